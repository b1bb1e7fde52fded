#!/usr/bin/env python3
"""Python cross-check of bench/few_shot.sh's centroid head (RESULTS "Few-shot"):
nearest class mean of L2-normalised ResNet-20 features (l2n), the same after
centring on the labelled images' mean (cl2n, SimpleShot), and Euclidean
nearest mean, on Fashion-MNIST classes 5-9 with 1/5/10/50 labelled images per
class (5 draws each, numpy seed 0), tested on the 5000 t10k images.
Inputs are resized 28 -> 32 bilinear here (graft resizes with Pillow's filter),
so the figures agree with graft's in trend, not to the digit.
Usage: /usr/bin/python3 bench/few_shot_ref.py SOURCE_RUN
"""
import gzip
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'reference'))
from cifar_resnet_ref import CifarResNet
import st
torch.set_num_threads(1)
sd, _ = st.load(sys.argv[1] + '/model.safetensors')
m = CifarResNet(20, 5); m.load_state_dict(sd); m.eval()
def idx(p, off):
    b = gzip.open(p).read(); return np.frombuffer(b, np.uint8, offset=off)
FM='/usr/share/datasets/fashion-mnist/'
Xtr = idx(FM+'train-images-idx3-ubyte.gz',16).reshape(-1,28,28); ytr = idx(FM+'train-labels-idx1-ubyte.gz',8)
Xte = idx(FM+'t10k-images-idx3-ubyte.gz',16).reshape(-1,28,28); yte = idx(FM+'t10k-labels-idx1-ubyte.gz',8)
mean = torch.tensor([0.485,0.456,0.406]).view(1,3,1,1); std = torch.tensor([0.229,0.224,0.225]).view(1,3,1,1)
def feats(X):
    out=[]
    with torch.no_grad():
        for i in range(0, len(X), 500):
            x = torch.from_numpy(X[i:i+500].astype(np.float32)/255).unsqueeze(1)
            x = F.interpolate(x, size=32, mode='bilinear', align_corners=False).repeat(1,3,1,1)
            x = (x-mean)/std
            h = m.layer3(m.layer2(m.layer1(F.relu(m.bn1(m.conv1(x))))))
            out.append(F.adaptive_avg_pool2d(h,1).flatten(1))
    return torch.cat(out)
T = [5,6,7,8,9]
te = np.isin(yte, T); Fte = feats(Xte[te]); Yte = torch.tensor([T.index(v) for v in yte[te]])
rng = np.random.default_rng(0)
def unit(x): return F.normalize(x, dim=1)
for n in (1,5,10,50):
    res = {'l2n':[], 'cl2n':[], 'euclid':[]}
    for s in range(5):
        idxs = np.concatenate([rng.choice(np.where(ytr==c)[0], n, replace=False) for c in T])
        Fs = feats(Xtr[idxs]); Ys = torch.tensor([T.index(v) for v in ytr[idxs]])
        for k in res:
            if k == 'euclid':
                C = torch.stack([Fs[Ys==c].mean(0) for c in range(5)]); pred = (-torch.cdist(Fte, C)).argmax(1)
            else:
                mu = Fs.mean(0) if k=='cl2n' else 0
                a, b = unit(Fs-mu), unit(Fte-mu)
                C = unit(torch.stack([a[Ys==c].mean(0) for c in range(5)])); pred = (b@C.T).argmax(1)
            res[k].append((pred==Yte).float().mean().item())
    print(n, {k: f"{100*np.mean(v):.2f}" for k,v in res.items()})
