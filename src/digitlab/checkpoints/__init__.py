"""The checkpoint format (`format`: Checkpoint, save/load, the shipped model) and what its
numbers must satisfy (`integrity`: the weights' digest, finite weights and outputs, sane
metadata). Every package that reads or writes a model imports it from here.
"""
