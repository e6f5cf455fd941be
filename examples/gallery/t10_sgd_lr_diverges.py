"""PyTorch regression with SGD(lr=5.0): the loss turns to nan within a few steps.
Root cause: a learning rate far too large (divergence)."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import scalelab
from _data import regression

ROOT_CAUSE = ("diverged-at-lr", "learning-rate")
CATEGORY = "learning rate"


def main(fixed=False, study="t10", db="gallery.db", verbose=True):
    X, y = regression()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 1))
    loss_fn = nn.MSELoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.01 if fixed else 5.0)
    loader = DataLoader(TensorDataset(torch.tensor(X), torch.tensor(y)[:, None]), batch_size=16, shuffle=True)
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
