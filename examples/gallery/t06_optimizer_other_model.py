"""PyTorch, the optimizer was built on a first model instance; training uses a second one.
Root cause: the optimizer does not hold the trained model's parameters."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import scalelab
from _data import blobs

ROOT_CAUSE = ("optimizer-params",)
CATEGORY = "parameters not trained"


def make_model():
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))


def main(fixed=False, study="t06", db="gallery.db", verbose=True):
    X, y = blobs(classes=3)
    torch.manual_seed(0)
    model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    if not fixed:
        model = make_model()               # "reset" the model after building the optimizer
    loss_fn = nn.CrossEntropyLoss()
    loader = DataLoader(TensorDataset(torch.tensor(X), torch.tensor(y)), batch_size=16, shuffle=True)
    with scalelab.watch(model, loss_fn, opt, study=study, db=db, verbose=verbose,   # the one added line
                        epochs=15, steps_per_epoch=len(loader)) as w:
        for epoch in range(15):
            for xb, yb in loader:
                opt.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                opt.step()
    return w.findings


if __name__ == "__main__":
    main()
