"""PyTorch, 3 classes: the model ends in nn.Softmax and the loss is nn.CrossEntropyLoss.
Root cause: softmax applied before a loss that applies (log-)softmax again."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import scalelab
from _data import blobs

ROOT_CAUSE = ("output-loss-mismatch",)
CATEGORY = "output activation x loss"


def main(fixed=False, study="t01", db="gallery.db", verbose=True):
    X, y = blobs(classes=3)
    torch.manual_seed(0)
    layers = [nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3)]
    model = nn.Sequential(*layers) if fixed else nn.Sequential(*layers, nn.Softmax(dim=1))
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
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
