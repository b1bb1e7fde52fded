"""safetensors files written by the spec-following writer in st.py, for the
C++ reader's tests. Values follow formulas the C++ test recomputes."""
import os

import torch

import st


def expected_tensors():
    """The same formulas as tests/weights/safetensors_test.cpp."""
    return {
        "f32": (torch.arange(24, dtype=torch.float32).reshape(2, 3, 4) / 7.0 - 1.5),
        "f16": (torch.arange(10, dtype=torch.float32) / 3.0).to(torch.float16),
        "bf16": (torch.arange(6, dtype=torch.float32).reshape(3, 2) * 1.25 - 2).to(torch.bfloat16),
        "i64": torch.arange(5, dtype=torch.int64) * 1000000007 - 3,
        "u8": torch.arange(7, dtype=torch.uint8) * 37,
        "scalar": torch.tensor(3.5, dtype=torch.float32),
        "empty": torch.zeros(0, 4, dtype=torch.float32),
    }


def make(out):
    st.save(os.path.join(out, "python_written.safetensors"), expected_tensors(),
            metadata={"format": "pt", "writer": "tests/reference/st.py"})


def check(path):
    """Exit status 0 when the file at `path` holds expected_tensors()."""
    got, meta = st.load(path)
    want = expected_tensors()
    assert list(got) == list(want), (list(got), list(want))
    for k, v in want.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape, k
        assert torch.equal(got[k], v), k
    assert meta.get("writer") == "graft", meta


if __name__ == "__main__":
    import sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    check(sys.argv[1])
    print("ok")
