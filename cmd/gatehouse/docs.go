package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// cliDocHeader opens docs/cli.md; the rest is generated from the commands.
const cliDocHeader = `# Command reference

<!-- Generated from the commands by ` + "`go run ./cmd/gatehouse docs --out docs/cli.md`" + `; do not edit.
     TestCLIDocsUpToDate fails when this file and the binary disagree. -->

Every command of ` + "`gatehouse`" + `, its flags and their defaults, as ` + "`gatehouse … --help`" + `
prints them. How scripts should use them (output, errors, exit codes, the
admin API's address and CA) is in [cli-scripting.md](cli-scripting.md).

## Exit codes

| code | meaning |
|---|---|
| 0 | done |
| 1 | the server refused or failed the request, or a local operation failed (an audit log or a report that does not verify) |
| 2 | usage or local validation: unknown command or flag, wrong argument count, a value that does not parse, an invalid config; nothing was sent |

` + "`gatehouse policy test`" + ` keeps ` + "`opa test`" + `'s codes (0 passed, 2 a test failed, 1 the
policy did not compile).

## Environment

| variable | used by |
|---|---|
| ` + "`GATEHOUSE_ADDR`" + ` | commands that talk to the admin API: its base URL (default ` + "`http://127.0.0.1:8081`" + `) |
| ` + "`GATEHOUSE_TOKEN`" + ` | the same: the credential (default: the token ` + "`gatehouse login`" + ` stored) |
| ` + "`GATEHOUSE_CACERT`, `GATEHOUSE_TLS_SERVER_NAME`" + ` | the same: a private CA and the name to check (as ` + "`--ca-cert`, `--tls-server-name`" + `) |
| ` + "`GATEHOUSE_CONFIG_DIR`" + ` | ` + "`login`" + `, ` + "`logout`" + ` and the commands after them: where the stored token lives (default: the user config dir, e.g. ` + "`~/.config/gatehouse/credentials.json`" + `) |
| ` + "`GATEHOUSE_CONFIG`" + ` | ` + "`serve`, `config check`" + ` and the offline commands: the config file |
| ` + "`GATEHOUSE_SECRET_<NAME>`, `GATEHOUSE_SECRET_MASTER_KEY`" + ` | ` + "`serve`" + ` and the offline commands: the server's secrets with ` + "`secrets.provider: env`" + ` (e.g. ` + "`GATEHOUSE_SECRET_PEPPER`" + `), and the key that seals generated secrets in PostgreSQL |
| ` + "`GATEHOUSE_DATA_DIR`, `GATEHOUSE_LISTEN`, `GATEHOUSE_ADMIN_LISTEN`" + ` | override the config file |
| ` + "`GATEHOUSE_ADMIN_TOKEN`" + ` | ` + "`serve`" + `: the bootstrap admin token on first start |

## Commands

`

// newDocsCmd is the hidden `gatehouse docs`: the command reference,
// docs/cli.md, generated from the command tree with cobra/doc.
func newDocsCmd() *cobra.Command {
	var out string
	var list bool
	cmd := &cobra.Command{
		Use:    "docs",
		Short:  "Write the command reference (docs/cli.md) generated from the commands",
		Hidden: true,
		Args:   cobra.NoArgs,
		Example: `  go run ./cmd/gatehouse docs --out docs/cli.md
  gatehouse docs --list   # every command path, one a line`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var buf bytes.Buffer
			var err error
			if list {
				for _, c := range documented(cmd.Root()) {
					fmt.Fprintln(&buf, c.CommandPath())
				}
			} else {
				err = cliReference(&buf, cmd.Root())
			}
			if err != nil {
				return err
			}
			if out == "" {
				_, err = buf.WriteTo(cmd.OutOrStdout())
				return err
			}
			if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil { // #nosec G306 -- docs/cli.md is a public document
				return fmt.Errorf("write the command reference: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "write to this file instead of stdout")
	cmd.Flags().BoolVar(&list, "list", false, "print every documented command path, one a line, instead")
	return cmd
}

// documented is root and every command under it that help lists (not
// hidden, deprecated or help itself), depth first in name order.
func documented(root *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{root}
	for _, c := range root.Commands() { // sorted by name
		if c.IsAvailableCommand() && !c.IsAdditionalHelpTopicCommand() {
			out = append(out, documented(c)...)
		}
	}
	return out
}

// cliReference writes the command reference: the header, a contents list,
// then one section per command as cobra/doc renders it, with its links
// turned into anchors of this one page.
func cliReference(w io.Writer, root *cobra.Command) error {
	cmds := documented(root)
	var b bytes.Buffer
	b.WriteString(cliDocHeader)
	for _, c := range cmds {
		depth := strings.Count(c.CommandPath(), " ")
		fmt.Fprintf(&b, "%s- [%s](%s) — %s\n", strings.Repeat("  ", depth), c.CommandPath(), anchor(c.CommandPath()), c.Short)
	}
	b.WriteString("\n")
	root.DisableAutoGenTag = true // no date: the file must not change by itself
	for _, c := range cmds {
		if err := doc.GenMarkdownCustom(c, &b, func(link string) string {
			return anchor(strings.ReplaceAll(strings.TrimSuffix(link, ".md"), "_", " "))
		}); err != nil {
			return fmt.Errorf("render %s: %w", c.CommandPath(), err)
		}
	}
	// cobra/doc separates the SEE ALSO entries from their text with a tab.
	_, err := w.Write(bytes.ReplaceAll(b.Bytes(), []byte(")\t - "), []byte(") — ")))
	return err
}

// anchor is the GitHub anchor of the heading "## path".
func anchor(path string) string {
	return "#" + strings.ReplaceAll(path, " ", "-")
}
