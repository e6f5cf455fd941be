"""PyTorch RNN classifier (forward takes the hidden state too) over sequences sorted by class,
with DataLoader(shuffle=False). Root cause: sorted labels without shuffling."""
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import scalelab

ROOT_CAUSE = ("sorted-labels",)
CATEGORY = "wrong labels"


class RNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn, self.fc = nn.RNN(3, 16, batch_first=True), nn.Linear(16, 2)

    def forward(self, x, hidden):
        out, hidden = self.rnn(x, hidden)
        return self.fc(out[:, -1]), hidden


def main(fixed=False, study="t13", db="gallery.db", verbose=True):
    rng = np.random.default_rng(0)
    y = np.sort(rng.integers(0, 2, size=300))
    X = (rng.normal(size=(300, 6, 3)) + y[:, None, None] * 0.8).astype("float32")
    torch.manual_seed(0)
    model = RNN()
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loader = DataLoader(TensorDataset(torch.tensor(X), torch.tensor(y)), batch_size=16, shuffle=fixed)
    with scalelab.watch(model, loss_fn, opt, study=study, db=db, verbose=verbose,   # the one added line
                        epochs=10, steps_per_epoch=len(loader)) as w:
        for epoch in range(10):
            for xb, yb in loader:
                opt.zero_grad()
                out, _ = model(xb, torch.zeros(1, len(xb), 16))
                loss = loss_fn(out, yb)
                loss.backward()
                opt.step()
    return w.findings


if __name__ == "__main__":
    main()
