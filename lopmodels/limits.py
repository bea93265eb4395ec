"""The largest magnitude a configured float may have: a trial computes in float32, where anything above its
largest finite value (3.40282e38) is infinite from the first step. Torch-free, for every layer's checks."""
FLOAT32_SAFE = 3.4e38
