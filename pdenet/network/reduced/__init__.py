"""The ``network-hjb`` model: the functional HJB of Liu & Markowich §4.3 for a network of one or
two modes (:mod:`.hjb` numerics, :mod:`.model` case schema and run, :mod:`.plots`)."""
