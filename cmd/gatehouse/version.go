package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set at build time by scripts/build.sh (and the Dockerfile, which runs
// it): -ldflags "-X main.version=v1.2.3 -X main.commit=… -X main.date=…".
// Left empty, they come from the build info Go records (the module
// version of `go install …@v1.2.3`, the VCS revision and time of a build
// in a git checkout).
var (
	version = ""
	commit  = ""
	date    = ""
)

// buildInfo is what `gatehouse version` prints.
type buildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	GoVersion string `json:"go_version"`
}

// readBuildInfo combines the -X values with debug.ReadBuildInfo: the
// linker flags win; what neither gives is "dev" or "unknown".
func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, Commit: commit, Date: date, GoVersion: runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			b.Version = info.Main.Version
		}
		modified := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Commit = or(b.Commit, s.Value)
			case "vcs.time":
				b.Date = or(b.Date, s.Value)
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && commit == "" && b.Commit != "" {
			b.Commit += "-dirty"
		}
		b.GoVersion = or(info.GoVersion, b.GoVersion)
	}
	b.Version, b.Commit, b.Date = or(b.Version, "dev"), or(b.Commit, "unknown"), or(b.Date, "unknown")
	return b
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version, commit, build date and Go version",
		Example: "  gatehouse version\n  gatehouse version --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b := readBuildInfo()
			return output(cmd, b, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "gatehouse %s\n  commit:  %s\n  built:   %s\n  go:      %s\n", b.Version, b.Commit, b.Date, b.GoVersion)
				return err
			})
		},
	}
}
