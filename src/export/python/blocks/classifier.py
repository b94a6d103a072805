class Classifier(nn.Module):
    """The final linear layer on the flattened input: one logit per class."""

    def __init__(self, in_features, classes):
        super().__init__()
        self.linear = nn.Linear(in_features, classes)

    def forward(self, x):
        return self.linear(torch.flatten(x, 1))
