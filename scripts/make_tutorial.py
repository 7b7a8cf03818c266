"""Write docs/tutorial.ipynb (the source of the notebook tutorial; run once when editing it).

The notebook is kept as code here so that its cells are reviewed like code; scripts/build_docs.py
executes it (nbclient) for the documentation site, and CI runs that.
"""
import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

cells = [
    new_markdown_cell("# pdenet in a notebook\n\nA case from its file and from Python, a run, the "
                      "result as arrays, as a figure and as an xarray tree; a network as a PyTorch "
                      "module. Executed for the documentation site by `make docs` (and in CI)."),
    new_code_cell("import numpy as np\nimport pdenet\n\ncase = pdenet.load_case('cases/heat_1d.toml')\ncase"),
    new_markdown_cell("`pdenet.run` returns a `Result` (arrays in memory); with `output=` it also writes "
                      "the HDF5 file. A notebook shows the result as a table."),
    new_code_cell("result = pdenet.run(case, output='build/tutorial/heat.h5')\nresult"),
    new_code_cell("u = result.fields['u']\nexact = np.exp(-0.5 * np.pi**2 * result.time)[:, None] * "
                  "np.sin(np.pi * result.mesh.axes[0])\nprint('max error', np.abs(u - exact).max())"),
    new_markdown_cell("Every plotter returns a matplotlib `Figure`; the notebook displays it. "
                      "Nothing changes matplotlib's backend."),
    new_code_cell("from pdenet.plot import plot_figure\nplot_figure(result)"),
    new_markdown_cell("The file is netCDF-4 as xarray reads it: named dimensions in every group."),
    new_code_cell("import xarray as xr\ntree = xr.open_datatree('build/tutorial/heat.h5', engine='h5netcdf')\n"
                  "tree['fields']['u'].sel(time=0.5, method='nearest').values[:4]"),
    new_markdown_cell("## A case from Python\n\nA dict instead of a file, and a numpy array or a "
                      "Python function where an expression goes."),
    new_code_cell("x = result.mesh.axes[0]\nsquare = case.with_values({'model.initial': np.where(abs(x - 0.5) < 0.2, 1.0, 0.0),"
                  "\n                             'exact': {}})\nr2 = pdenet.run(square, write=False)\n"
                  "print(r2.diagnostics['mass'][[0, -1]])"),
    new_markdown_cell("## A network as a PyTorch module\n\nThe discrete network (here a Heun "
                      "ResNet) as a `torch.nn.Module`: its loss is pdenet's."),
    new_code_cell("net = pdenet.run('cases/network_depth.toml', overrides=['time.steps=8', 'mesh.cells=[16]'], "
                  "write=False)\nfrom pdenet.network import to_torch\nmodule = to_torch(net)\n"
                  "J = module.loss(net.analysis['inputs'], net.analysis['targets'])\n"
                  "print(J.item(), net.attrs['loss'])"),
]
nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                         "language": "python"}})
nbformat.write(nb, "docs/tutorial.ipynb")
