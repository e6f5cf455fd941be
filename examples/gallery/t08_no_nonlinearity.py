"""PyTorch, circles inside/outside: forward() chains the Linear layers without activations.
Root cause: no nonlinearity between the hidden layers (the model is linear)."""
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import scalelab

ROOT_CAUSE = ("no-nonlinearity",)
CATEGORY = "no nonlinearity"


class Net(nn.Module):
    def __init__(self, fixed):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(2, 32), nn.Linear(32, 32), nn.Linear(32, 1)
        self.fixed = fixed

    def forward(self, x):
        act = torch.relu if self.fixed else (lambda t: t)
        return self.fc3(act(self.fc2(act(self.fc1(x)))))


def main(fixed=False, study="t08", db="gallery.db", verbose=True):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2)).astype("float32")
    y = ((X ** 2).sum(1) < 1.4).astype("float32")[:, None]
    torch.manual_seed(0)
    model = Net(fixed)
    loss_fn = nn.BCEWithLogitsLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
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
