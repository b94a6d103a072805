    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x
