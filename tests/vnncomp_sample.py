"""A VNN-COMP tool's sampling falsifier, as a script: the verifier-process and verification-suite
tests plug it into the built-in vnncomp verifier through a tool folder."""

import textwrap

SAMPLE = textwrap.dedent("""
    import sys
    import numpy as np
    import onnxruntime as ort
    from harness.verify.vnnlib import load

    onnx_path, vnnlib_path, result, timeout = sys.argv[1:5]
    prop = load(vnnlib_path)
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    rng = np.random.default_rng(0)
    samples = [np.array(lo) + rng.random((500, len(lo))) * (np.array(hi) - lo) for lo, hi in prop.input_boxes()]
    for x in np.concatenate(samples):
        y = sess.run(None, {inp.name: x.astype(np.float32).reshape(shape)})[0].reshape(-1)
        if prop.is_unsafe(list(y)):
            cex = [f"(X_{i} {v!r})" for i, v in enumerate(x.tolist())]
            cex += [f"(Y_{j} {v!r})" for j, v in enumerate(y.tolist())]
            open(result, "w").write("sat\\n(" + "\\n ".join(cex) + ")\\n")
            break
    else:
        open(result, "w").write("unknown\\n")
""")
