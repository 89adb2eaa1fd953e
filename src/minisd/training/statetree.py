"""Nested state dicts (optimizer, EMA, LR scheduler) as JSON + a flat tensor dict, never a pickle.

Every tensor in the tree is replaced by {"__tensor__": key} and stored under that key in a
safetensors file; tuples keep their type via {"__tuple__": [...]}, non-string dict keys via
{"__dict__": [[key, value], ...]}, so `unflatten(flatten(x))` rebuilds x exactly.
"""

from __future__ import annotations

import torch


def flatten(tree, prefix: str) -> tuple[object, dict[str, torch.Tensor]]:
    tensors: dict[str, torch.Tensor] = {}

    def walk(node, path: str):
        if isinstance(node, torch.Tensor):
            tensors[path] = node.detach().to("cpu").contiguous().clone()
            return {"__tensor__": path}
        if isinstance(node, dict):
            if all(isinstance(k, str) for k in node):
                return {k: walk(v, f"{path}.{k}") for k, v in node.items()}
            return {"__dict__": [[k, walk(v, f"{path}.{k}")] for k, v in node.items()]}
        if isinstance(node, tuple):
            return {"__tuple__": [walk(v, f"{path}.{i}") for i, v in enumerate(node)]}
        if isinstance(node, list):
            return [walk(v, f"{path}.{i}") for i, v in enumerate(node)]
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        raise TypeError(f"cannot store {type(node).__name__} at {path} without pickling")

    return walk(tree, prefix), tensors


def unflatten(tree, tensors: dict[str, torch.Tensor]):
    if isinstance(tree, dict):
        if set(tree) == {"__tensor__"}:
            return tensors[tree["__tensor__"]]
        if set(tree) == {"__tuple__"}:
            return tuple(unflatten(v, tensors) for v in tree["__tuple__"])
        if set(tree) == {"__dict__"}:
            return {k: unflatten(v, tensors) for k, v in tree["__dict__"]}
        return {k: unflatten(v, tensors) for k, v in tree.items()}
    if isinstance(tree, list):
        return [unflatten(v, tensors) for v in tree]
    return tree
