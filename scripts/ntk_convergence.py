#!/usr/bin/env python
"""Measured figures of docs/ntk.md: empirical-NTK error against width (16 networks per width) and
GD on a one-hidden-layer erf network against the kernel prediction.

    PYTHONPATH=. OMP_NUM_THREADS=1 python scripts/ntk_convergence.py
"""
import math, numpy as np
from pdenet.meanfield import ntk
SW2,SB2=1.5,0.1
X=np.random.default_rng(0).standard_normal((4,5))
for name in ["relu","tanh","erf"]:
    _,T=ntk.nngp_ntk(X,3,SW2,SB2,name); widths=np.array([32,128,512,1024,4096]); rms=[]
    for w in widths:
        errs=[np.linalg.norm(ntk.empirical_ntk(ntk.init_params(5,w,3,seed=s),X,SW2,SB2,name)-T) for s in range(16)]
        rms.append(math.sqrt(np.mean(np.square(errs)))/np.linalg.norm(T))
    print(name, "rms rel err", np.round(rms,4), "slope", round(np.polyfit(np.log(widths),np.log(rms),1)[0],3))
X=np.random.default_rng(0).standard_normal((8,5)); y=np.sin(X[:,0])
_,T=ntk.nngp_ntk(X,2,SW2,SB2,"erf"); lam=np.linalg.eigvalsh(T); eta=0.3/lam[-1]; steps=int(4/(eta*lam[0]))
for w in (256,1024,4096,16384):
    d=[];rate=[]
    for s in range(2):
        tr=ntk.train_gd(ntk.init_params(5,w,2,seed=s),X,y,SW2,SB2,"erf",eta,steps)
        pred=ntk.kernel_prediction(T,tr.u[0],y,eta,steps)
        d.append(np.linalg.norm(tr.u-pred,axis=1).max()/np.linalg.norm(tr.u[0]-y))
        r=np.log(np.linalg.norm(tr.u-y,axis=1)); k=np.arange(steps+1); rate.append(-np.polyfit(k[steps//2:],r[steps//2:],1)[0])
    print(w, "GD max rel deviation", round(np.mean(d),4), "late rate", round(np.mean(rate),6), "eta*lam_min-pred", round(-math.log(1-eta*lam[0]),6), "steps", steps)
