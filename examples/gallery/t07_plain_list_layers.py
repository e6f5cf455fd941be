"""PyTorch, hidden layers kept in a plain Python list: model.parameters() does not see them.
Root cause: unregistered parameters (never updated by the optimizer)."""
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import scalelab
from _data import blobs

ROOT_CAUSE = ("unregistered-params",)
CATEGORY = "parameters not trained"


class Net(nn.Module):
    def __init__(self, fixed):
        super().__init__()
        hidden = [nn.Linear(8, 32), nn.Linear(32, 32)]
        self.hidden = nn.ModuleList(hidden) if fixed else hidden
        self.out = nn.Linear(32, 3)

    def forward(self, x):
        for layer in self.hidden:
            x = F.relu(layer(x))
        return self.out(x)


def main(fixed=False, study="t07", db="gallery.db", verbose=True):
    X, y = blobs(classes=3)
    torch.manual_seed(0)
    model = Net(fixed)
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
