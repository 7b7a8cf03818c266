"""The ``heat`` model (u_t = kappa Lap u + s): the worked example of docs/adding-a-model.md."""
