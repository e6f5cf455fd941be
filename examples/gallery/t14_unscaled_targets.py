"""PyTorch regression of energy use in kWh (thousands): the loss is huge and the model predicts the mean.
Root cause: unscaled regression targets."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import scalelab
from _data import regression

ROOT_CAUSE = ("target-scale",)
CATEGORY = "unscaled targets"


def main(fixed=False, study="t14", db="gallery.db", verbose=True):
    X, y = regression()
    kwh = 3000 + 800 * torch.tensor(y)
    target = (kwh - kwh.mean()) / kwh.std() if fixed else kwh
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 1))
    loss_fn = nn.MSELoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(torch.tensor(X), target[:, None]), batch_size=16, shuffle=True)
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
