package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes (docs/cli.md, "Exit codes").
const (
	exitOK    = 0
	exitError = 1 // the server refused or failed the request, or a local operation failed
	exitUsage = 2 // bad command, flags, arguments or config: nothing was sent
)

// Error codes of errors that did not come from the admin API (those keep
// the API's code, e.g. "not_found").
const (
	codeUsage       = "usage"       // exit 2
	codeUnreachable = "unreachable" // no answer from the admin API
	codeError       = "error"       // anything else that failed here
)

// usageError marks errors that exit with code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitCode makes Run exit with a given code after the command printed its
// own output (like `opa test`).
type exitCode int

func (e exitCode) Error() string { return "" }

// apiError is an error answer of the admin API.
type apiError struct {
	Status    int    // HTTP status
	Code      string // the API's error code, e.g. "not_found"
	Message   string
	RequestID string
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (HTTP %d %s)", e.Message, e.Status, e.Code) }

// localError is a failure before any answer, with its code.
type localError struct {
	code string
	err  error
}

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// errorJSON is how errors print with --json: {"error": {code, message,
// status}}; status is the HTTP status, 0 when no answer came.
type errorJSON struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		Status    int    `json:"status"`
		RequestID string `json:"request_id,omitempty"`
	} `json:"error"`
}

// report prints err on w (one "gatehouse: …" line, or JSON) and returns
// the exit code.
func report(w io.Writer, err error, asJSON bool) int {
	var ec exitCode
	if errors.As(err, &ec) {
		return int(ec)
	}
	var out errorJSON
	out.Error.Code, out.Error.Message = codeError, strings.TrimSpace(err.Error())
	code := exitError
	var (
		ue usageError
		ae *apiError
		le *localError
	)
	switch {
	case errors.As(err, &ue):
		out.Error.Code, code = codeUsage, exitUsage
	case errors.As(err, &ae):
		out.Error.Code, out.Error.Message, out.Error.Status, out.Error.RequestID = ae.Code, ae.Message, ae.Status, ae.RequestID
	case errors.As(err, &le):
		out.Error.Code = le.code
	}
	if asJSON {
		json.NewEncoder(w).Encode(out)
	} else {
		fmt.Fprintf(w, "gatehouse: %s\n", strings.TrimSpace(err.Error()))
	}
	return code
}

// wantsJSON reports whether --json was given, parsed or (when parsing
// failed before it) among the raw arguments.
func wantsJSON(cmd *cobra.Command, args []string) bool {
	if cmd != nil {
		if f := cmd.Flags().Lookup("json"); f != nil && f.Changed {
			return f.Value.String() == "true"
		}
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--json" || a == "--json=true" {
			return true
		}
	}
	return false
}

// strict makes every command of the tree refuse what it does not know
// with exit 2: a group (a command with subcommands) answers an unknown
// subcommand with a suggestion, and a command given the wrong number of
// arguments prints its usage line.
func strict(c *cobra.Command) {
	c.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c.HasSubCommands() {
			if c.Run == nil && c.RunE == nil {
				c.Args, c.RunE = cobra.ArbitraryArgs, unknownSubcommand
			}
			for _, sub := range c.Commands() {
				walk(sub)
			}
			return
		}
		args := c.Args
		if args == nil {
			args = cobra.NoArgs
		}
		c.Args = func(cmd *cobra.Command, a []string) error {
			if err := args(cmd, a); err != nil {
				return usageError{fmt.Errorf("%s %w\nUsage: %s", cmd.CommandPath()+":", err, cmd.UseLine())}
			}
			return nil
		}
	}
	walk(c)
}

// unknownSubcommand runs a group: help without arguments, otherwise an
// unknown-command error naming the closest subcommands.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	cmd.SuggestionsMinimumDistance = 2
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", strings.Join(s, `" or "`))
	}
	return usageError{fmt.Errorf("%s (see '%s --help')", msg, cmd.CommandPath())}
}
