"""PyTorch, F.nll_loss (as in PyTorch's MNIST example) on a model without log_softmax.
Root cause: NLLLoss expects log-probabilities; on raw logits it is unbounded below."""
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
        self.fc1, self.fc2 = nn.Linear(8, 32), nn.Linear(32, 3)
        self.fixed = fixed

    def forward(self, x):
        x = self.fc2(F.relu(self.fc1(x)))
        return F.log_softmax(x, dim=1) if self.fixed else x


def main(fixed=False, study="t03", db="gallery.db", verbose=True):
    X, y = blobs(classes=3)
    torch.manual_seed(0)
    model = Net(fixed)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
    loader = DataLoader(TensorDataset(torch.tensor(X), torch.tensor(y)), batch_size=16, shuffle=True)
    with scalelab.watch(model, F.nll_loss, opt, study=study, db=db, verbose=verbose,   # the one added line
                        epochs=15, steps_per_epoch=len(loader)) as w:
        for epoch in range(15):
            for xb, yb in loader:
                opt.zero_grad()
                loss = F.nll_loss(model(xb), yb)
                loss.backward()
                opt.step()
    return w.findings


if __name__ == "__main__":
    main()
