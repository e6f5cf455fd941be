"""A plain PyTorch training loop (a small conv net on Fashion-MNIST) with one added line:
``scalelab.watch``, which records the built-in probes through hooks, stores the run and
prints its findings when the ``with`` block ends.

    python examples/pytorch_loop.py [--quick] [--db scalelab.db]
    scalelab explain --db scalelab.db pytorch-loop
"""

import argparse

import torch
from torch import nn

import scalelab


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2000 training samples, 1 epoch (CI)")
    ap.add_argument("--db", default="scalelab.db")
    ap.add_argument("--study", default="pytorch-loop")
    ap.add_argument("--probes", default="standard", choices=["none", "cheap", "standard", "full"])
    args = ap.parse_args(argv)
    torch.manual_seed(0)

    ds = scalelab.load_fashion_mnist()
    n, epochs = (2000, 1) if args.quick else (len(ds.y_train), 3)
    X = torch.as_tensor(ds.X_train[:n]).float().div(255).view(-1, 1, 28, 28)
    y = torch.as_tensor(ds.y_train[:n]).long()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=64, shuffle=True)

    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(16 * 7 * 7, 10))
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    with scalelab.watch(model, loss_fn, opt, study=args.study, db=args.db, probes=args.probes,  # the added line
                        level={"input.scale": "1/255"}, epochs=epochs, steps_per_epoch=len(loader),
                        probe_data=(X, y)) as w:
        for epoch in range(epochs):
            for xb, yb in loader:
                opt.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                opt.step()
            print(f"epoch {epoch + 1}: loss {loss.item():.4f}")
    return [f.id for f in w.findings]


if __name__ == "__main__":
    main()
