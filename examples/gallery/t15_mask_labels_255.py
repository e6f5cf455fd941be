"""PyTorch binary classifier whose labels come from a mask image: 0 and 255.
Root cause: labels outside 0..1 for nn.BCEWithLogitsLoss."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import scalelab
from _data import blobs

ROOT_CAUSE = ("labels-out-of-range",)
CATEGORY = "wrong labels"


def main(fixed=False, study="t15", db="gallery.db", verbose=True):
    X, y = blobs(classes=2)
    mask = torch.tensor(y, dtype=torch.float32)[:, None] * 255   # as read from the PNG
    target = mask / 255 if fixed else mask
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
    loss_fn = nn.BCEWithLogitsLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(torch.tensor(X), target), batch_size=16, shuffle=True)
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
