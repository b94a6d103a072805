def load_model(weights=WEIGHTS):
    """The trained `{net_class}` in evaluation mode.

    Every parameter and batch-norm buffer is loaded from the safetensors
    file `weights`; a missing or unexpected one is an error.
    """
    model = {net_class}()
    model.load_state_dict(load_file(weights), strict=True)
    return model.eval()
