"""PyTorch model with its own train(loader) method (overriding nn.Module.train) and Adam(lr=1e-7).
Root cause: a learning rate too small to move the weights in this run."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import scalelab
from _data import blobs

ROOT_CAUSE = ("learning-rate",)
CATEGORY = "learning rate"


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
        self.loss_fn = nn.CrossEntropyLoss()

    def forward(self, x):
        return self.net(x)

    def train(self, loader, opt, epochs):      # the user's own training method
        for epoch in range(epochs):
            for xb, yb in loader:
                opt.zero_grad()
                loss = self.loss_fn(self(xb), yb)
                loss.backward()
                opt.step()
        return self


def main(fixed=False, study="t16", db="gallery.db", verbose=True):
    X, y = blobs(classes=3)
    torch.manual_seed(0)
    model = Classifier()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3 if fixed else 1e-7)
    loader = DataLoader(TensorDataset(torch.tensor(X), torch.tensor(y)), batch_size=16, shuffle=True)
    with scalelab.watch(model, model.loss_fn, opt, study=study, db=db, verbose=verbose,   # the one added line
                        epochs=15, steps_per_epoch=len(loader)) as w:
        model.train(loader, opt, 15)
    return w.findings


if __name__ == "__main__":
    main()
