/**
 * The Python with torch + torchvision that the interop tests run: Debian's /usr/bin/python3 (python3-torch,
 * python3-torchvision) unless BTM_PYTHON names another (a CUDA box's PyTorch, scripts/gpu/run.sh).
 */
export const PYTHON = process.env.BTM_PYTHON || '/usr/bin/python3';
