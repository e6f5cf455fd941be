"""PyTorch regression: output (n, 1) against a target of shape (n,); MSE broadcasts to (n, n).
Root cause: target shape broadcast by the loss (the model learns the mean)."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import scalelab
from _data import regression

ROOT_CAUSE = ("target-shape-broadcast",)
CATEGORY = "loss and target shapes"


def main(fixed=False, study="t04", db="gallery.db", verbose=True):
    X, y = regression()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 1))
    loss_fn = nn.MSELoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(torch.tensor(X), torch.tensor(y)), batch_size=16, shuffle=True)
    with scalelab.watch(model, loss_fn, opt, study=study, db=db, verbose=verbose,   # the one added line
                        epochs=15, steps_per_epoch=len(loader)) as w:
        for epoch in range(15):
            for xb, yb in loader:
                opt.zero_grad()
                out = model(xb)
                loss = loss_fn(out.squeeze(1) if fixed else out, yb)
                loss.backward()
                opt.step()
    return w.findings


if __name__ == "__main__":
    main()
