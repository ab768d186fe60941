"""The Circles experiment (paper section 2.2, appendix B): image reconstruction through a set.

A CNN set generator G turns an image into a set of vectors, a shared decoder F draws each
element and sums the drawings (eq. 4); with an SRN between them the set is refined so that
it encodes to an embedding of the image. The decomposition metric (B.2) counts how many
elements draw something and compares it with the number of circles.
"""
