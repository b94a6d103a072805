    def forward(self, x, column=None):
        """Logits for the images `x`.

        Global drop-path (Larsson et al. 2017): in training, with
        probability `global_ratio`, one column chosen at random computes
        every fractal block of the batch alone. `column=k` evaluates
        column k alone.
        """
        if (self.training and column is None
                and torch.rand(()) < self.global_ratio):
            column = int(torch.randint(1, self.columns + 1, ()))
        for block in self.blocks:
            if isinstance(block, FractalBlock):
                x = block(x, column)
            else:
                x = block(x)
        return x
