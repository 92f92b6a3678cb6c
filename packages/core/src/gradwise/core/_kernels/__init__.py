"""Private Numba loops. Each writes into ``out`` arrays it is given; ``gradwise.core.ops`` is
the only caller. Loops run over flat or 2-/3-D C-contiguous arrays, one writer per output
element, so the parallel variants are race-free.
"""
