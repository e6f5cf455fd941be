"""PyTorch, 0..255 pixel images converted with .float() but not divided by 255.
Root cause: unscaled inputs."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import scalelab
from _data import pixels

ROOT_CAUSE = ("input-scale",)
CATEGORY = "unscaled inputs"


def main(fixed=False, study="t09", db="gallery.db", verbose=True):
    X, y = pixels()
    X = torch.tensor(X).float()
    if fixed:
        X = X / 255.0
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 3))
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(X, torch.tensor(y)), batch_size=16, shuffle=True)
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
