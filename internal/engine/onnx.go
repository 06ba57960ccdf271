package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// EnvONNXLibrary is the path of ONNX Runtime's shared library (libonnxruntime.so) for the
// onnx:cpu backend (github.com/gomlx/compute-onnx reads it too).
const EnvONNXLibrary = "ONNXRUNTIME_SHARED_LIBRARY_PATH"

// ONNXAuto says whether Choose picks onnx:cpu by itself when ONNX Runtime is found and works.
// It stays off while the Go backend is as fast or faster on the GPT-2 benchmark, or while
// onnx:cpu fails tests the Go backend passes (docs/performance.md has the numbers);
// GOMLX_BACKEND=onnx:cpu still selects it.
var ONNXAuto = false

// onnxLibFromUser is the library the user named in the environment ("" if none).
var onnxLibFromUser = os.Getenv(EnvONNXLibrary)

func init() {
	// Where scripts/fetch-onnxruntime.sh put the library, GOMLX_BACKEND=onnx:cpu finds it
	// without the user setting the path (compute-onnx would otherwise try to download one).
	if onnxLibFromUser == "" && onnxCompiledIn() {
		if lib := findONNXLibrary(); lib != "" {
			os.Setenv(EnvONNXLibrary, lib)
		}
	}
	// XLA (GPU) candidates put themselves first (xla.go); ONNX Runtime comes after them.
	candidates = append(candidates, chooseONNX)
}

// onnxCompiledIn reports whether the onnx backend is linked into this program.
func onnxCompiledIn() bool { return slices.Contains(compute.List(), "onnx") }

// ONNXLibraryDirs are the directories searched for libonnxruntime.so when
// ONNXRUNTIME_SHARED_LIBRARY_PATH is not set: $GONNSIGHT_HOME/lib, then
// ~/.local/share/gonnsight/lib (where scripts/fetch-onnxruntime.sh puts it).
func ONNXLibraryDirs() []string {
	var dirs []string
	if h := os.Getenv("GONNSIGHT_HOME"); h != "" {
		dirs = append(dirs, filepath.Join(h, "lib"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".local", "share", "gonnsight", "lib"))
	}
	return dirs
}

func findONNXLibrary() string {
	for _, d := range ONNXLibraryDirs() {
		for _, n := range []string{"libonnxruntime.so", "libonnxruntime.so.1"} {
			p := filepath.Join(d, n)
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return p
			}
		}
	}
	return ""
}

// ONNXLibrary returns the ONNX Runtime library onnx:cpu would load: the one named by
// ONNXRUNTIME_SHARED_LIBRARY_PATH, else the first found in ONNXLibraryDirs; "" if none,
// or if the onnx backend is not linked into this program.
func ONNXLibrary() string {
	if !onnxCompiledIn() {
		return ""
	}
	if p := os.Getenv(EnvONNXLibrary); p != "" {
		return p
	}
	return findONNXLibrary()
}

// chooseONNX picks onnx:cpu when ONNXAuto is on, the library is found, and a small graph
// runs correctly on it. A library that fails (missing, wrong architecture, missing
// symbols, wrong results) is a warning naming it, never an error.
func chooseONNX() (string, string, []string) {
	if !ONNXAuto {
		return "", "", nil
	}
	lib := ONNXLibrary()
	if lib == "" && os.Getenv(EnvONNXLibrary) != "" {
		lib = os.Getenv(EnvONNXLibrary) // set, but the backend is not linked in: say so
	}
	if lib == "" {
		return "", "", nil
	}
	if err := CheckONNX(lib); err != nil {
		return "", "", []string{err.Error()}
	}
	return "onnx:cpu", "ONNX Runtime on the CPU (" + lib + ")", nil
}

// CheckONNX loads the ONNX Runtime library lib and runs a small graph on it (a matmul, a
// softmax, a gather, a layer norm's reductions): the error says which library failed and why.
func CheckONNX(lib string) error {
	fail := func(err error) error {
		return fmt.Errorf("ONNX Runtime library %s: %v; not using onnx:cpu", lib, err)
	}
	if !onnxCompiledIn() {
		return fail(fmt.Errorf("the onnx backend is not linked into this program"))
	}
	st, err := os.Stat(lib)
	if err != nil {
		return fail(err)
	}
	if st.IsDir() {
		return fail(fmt.Errorf("it is a directory"))
	}
	onnxMu.Lock()
	defer onnxMu.Unlock()
	if onnxLoaded != "" {
		if onnxLoaded == lib {
			return nil
		}
		return fail(fmt.Errorf("this process already loaded ONNX Runtime from %s", onnxLoaded))
	}
	prev, had := os.LookupEnv(EnvONNXLibrary)
	os.Setenv(EnvONNXLibrary, lib)
	err = catch(func() error {
		b, err := newBackend("onnx:cpu")
		if err != nil {
			return err
		}
		return smokeTest(b)
	})
	if err != nil {
		if had {
			os.Setenv(EnvONNXLibrary, prev)
		} else {
			os.Unsetenv(EnvONNXLibrary)
		}
		return fail(err)
	}
	onnxLoaded = lib
	return nil
}

// onnxLoaded is the library that passed CheckONNX: ONNX Runtime loads once per process.
var (
	onnxMu     sync.Mutex
	onnxLoaded string
)

// smokeTest runs a graph with the op kinds GPT-2 uses and checks the numbers.
func smokeTest(b compute.Backend) error {
	e := New(b, "onnx:cpu", "smoke test")
	w := tensors.FromFlatDataAndDimensions([]float32{1, 2, 3, 4, 5, 6}, 3, 2)
	ids := tensors.FromFlatDataAndDimensions([]int32{2, 0}, 2)
	out, err := e.Run("onnx-smoke", func(g *graph.Graph) ([]*graph.Node, error) {
		wp := graph.Parameter(g, "w", w.Shape())
		ip := graph.Parameter(g, "ids", shapes.Make(dtypes.Int32, 2))
		rows := graph.Gather(wp, graph.ExpandAxes(ip, -1))                             // [[5 6] [1 2]]
		prod := graph.DotGeneral(rows, []int{1}, nil, wp, []int{1}, nil)               // [2, 3]
		sm := graph.Softmax(graph.DivScalar(prod, 10), -1)                             // rows sum to 1
		mean := graph.ReduceAndKeep(prod, graph.ReduceMean, -1)                        // [2, 1]
		norm := graph.Div(graph.Sub(prod, mean), graph.Sqrt(graph.AddScalar(mean, 1))) // finite
		return []*graph.Node{prod, graph.ReduceSum(sm, -1), norm}, nil
	}, func(name string, _ shapes.Shape) (*tensors.Tensor, error) {
		if name == "w" {
			return w, nil
		}
		return ids, nil
	})
	if err != nil {
		return err
	}
	got := tensors.MustCopyFlatData[float32](out[0])
	want := []float32{17, 39, 61, 5, 11, 17}
	for i := range want {
		if got[i] != want[i] {
			return fmt.Errorf("smoke graph computed %v, want %v", got, want)
		}
	}
	for _, s := range tensors.MustCopyFlatData[float32](out[1]) {
		if s < 0.999 || s > 1.001 {
			return fmt.Errorf("smoke graph: softmax rows sum to %v", s)
		}
	}
	return nil
}
