class GlobalAvgPool(nn.Module):
    """Averages each channel over the whole map, [B, C, H, W] -> [B, C], as
    the CIFAR ResNets do before their classifier (He et al. 2016).
    """

    def forward(self, x):
        return x.mean(dim=(2, 3))
