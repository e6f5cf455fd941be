"""PyTorch, 4 classes: forward() ends with F.relu on the logits (as on every layer).
Root cause: an activation on the final logits before nn.CrossEntropyLoss."""
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import scalelab
from _data import blobs

ROOT_CAUSE = ("output-loss-mismatch",)
CATEGORY = "output activation x loss"


class Net(nn.Module):
    def __init__(self, fixed):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(8, 32), nn.Linear(32, 32), nn.Linear(32, 4)
        self.fixed = fixed

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x if self.fixed else F.relu(x)


def main(fixed=False, study="t02", db="gallery.db", verbose=True):
    X, y = blobs(classes=4)
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
