package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/dlock-raft/dlock/client"
)

const (
	// EnvToken names the environment variable that sets the default of --token.
	EnvToken = "DLOCK_TOKEN"
	// EnvInsecureToken names the environment variable that sets the default of --insecure-token.
	EnvInsecureToken = "DLOCK_INSECURE_TOKEN"
)

// authFlags are the credentials flags of every command group.
type authFlags struct {
	token    string
	insecure bool
}

func (a *authFlags) bind(pf *pflag.FlagSet) {
	insecure, _ := strconv.ParseBool(os.Getenv(EnvInsecureToken))
	pf.StringVar(&a.token, "token", os.Getenv(EnvToken),
		"access token for clusters with access control on; default from $"+EnvToken)
	pf.BoolVar(&a.insecure, "insecure-token", insecure,
		"send --token over connections without TLS (anyone on the path can read it); default from $"+EnvInsecureToken)
}

func (a *authFlags) options() []client.Option {
	var opts []client.Option
	if a.token != "" {
		opts = append(opts, client.WithToken(a.token))
	}
	if a.insecure {
		opts = append(opts, client.AllowInsecureToken())
	}
	return opts
}

// explain adds a hint to a client that could not be made while a token was given: gRPC sends a token
// only over TLS.
func (a *authFlags) explain(err error) error {
	if a.token == "" || a.insecure {
		return err
	}
	return fmt.Errorf("%w (a --token is sent only over TLS; --insecure-token sends it in plaintext, see its warning)", err)
}

// aclCommand is the acl group: bootstrap, whoami, principals, tokens and rules.
func aclCommand() *cobra.Command {
	f := &common{}
	cmd := group("acl", "Manage access control: principals, tokens and rules", f)
	principal := &cobra.Command{
		Use:   "principal",
		Short: "Add, remove and list principals",
		Args:  args(0, 0),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	principal.AddCommand(aclPrincipalAdd(f), aclPrincipalRemove(f), aclPrincipalList(f))
	token := &cobra.Command{
		Use:   "token",
		Short: "Create and revoke tokens",
		Args:  args(0, 0),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	token.AddCommand(aclTokenCreate(f), aclTokenRevoke(f))
	cmd.AddCommand(aclBootstrap(f), aclWhoAmI(f), principal, token,
		aclRuleChange(f, "grant", "Grant PRINCIPAL a permission on names under PREFIX (default: all)", "granted"),
		aclRuleChange(f, "revoke", "Revoke a rule from PRINCIPAL", "revoked"), aclRules(f))
	return cmd
}

func aclBootstrap(f *common) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "bootstrap [--principal root]",
		Short: "Create the first principal, with the admin permission, and print its token (once per cluster)",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd, 0, func(ctx context.Context, c *client.Client, out printer) error {
				tok, err := c.Bootstrap(ctx, name)
				if err != nil {
					return err
				}
				return out.token(tok)
			})
		},
	}
	cmd.Flags().StringVar(&name, "principal", "root", "name of the first principal")
	return cmd
}

func aclWhoAmI(f *common) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Print the principal the cluster takes this caller for, and its rules",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd, 0, func(ctx context.Context, c *client.Client, out printer) error {
				id, err := c.WhoAmI(ctx)
				if err != nil {
					return err
				}
				return out.identity(id)
			})
		},
	}
}

func aclPrincipalAdd(f *common) *cobra.Command {
	return &cobra.Command{
		Use:   "add NAME",
		Short: "Add a principal without rules or tokens (a certificate's Subject CommonName, or a name for tokens)",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return f.run(cmd, 0, func(ctx context.Context, c *client.Client, out printer) error {
				if err := c.AddPrincipal(ctx, a[0]); err != nil {
					return err
				}
				return out.done("added principal", "principal", a[0])
			})
		},
	}
}

func aclPrincipalRemove(f *common) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a principal with its rules and tokens",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return f.run(cmd, 0, func(ctx context.Context, c *client.Client, out printer) error {
				if err := c.RemovePrincipal(ctx, a[0]); err != nil {
					return err
				}
				return out.done("removed principal", "principal", a[0])
			})
		},
	}
}

func aclPrincipalList(f *common) *cobra.Command {
	var stale bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the principals with their rules and token ids",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd, 0, func(ctx context.Context, c *client.Client, out printer) error {
				ps, err := principals(ctx, c, stale)
				if err != nil {
					return err
				}
				return out.principals(ps)
			})
		},
	}
	cmd.Flags().BoolVar(&stale, "stale", false, "read the answering node's replica")
	return cmd
}

func principals(ctx context.Context, c *client.Client, stale bool) ([]client.Principal, error) {
	var opts []client.ReadOption
	if stale {
		opts = append(opts, client.Stale())
	}
	return c.Principals(ctx, opts...)
}

func aclTokenCreate(f *common) *cobra.Command {
	return &cobra.Command{
		Use:   "create PRINCIPAL",
		Short: "Create a token for PRINCIPAL and print it (shown once: the cluster keeps only its hash)",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return f.run(cmd, 0, func(ctx context.Context, c *client.Client, out printer) error {
				tok, err := c.CreateToken(ctx, a[0])
				if err != nil {
					return err
				}
				return out.token(tok)
			})
		},
	}
}

func aclTokenRevoke(f *common) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke TOKEN-ID",
		Short: "Revoke the token with this id (see acl principal list)",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return f.run(cmd, 0, func(ctx context.Context, c *client.Client, out printer) error {
				if err := c.RevokeToken(ctx, a[0]); err != nil {
					return err
				}
				return out.done("revoked token", "token_id", a[0])
			})
		},
	}
}

// aclRuleChange is grant or revoke: PRINCIPAL PERMISSION [PREFIX].
func aclRuleChange(f *common, verb, short, done string) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " PRINCIPAL read|lock|write|admin [PREFIX]",
		Short: short,
		Args:  args(2, 3),
		RunE: func(cmd *cobra.Command, a []string) error {
			rule := client.Rule{Permission: a[1]}
			if len(a) == 3 {
				rule.Prefix = a[2]
			}
			switch rule.Permission {
			case client.PermRead, client.PermLock, client.PermWrite, client.PermAdmin:
			default:
				return UsageError(fmt.Errorf("permission %q: want read, lock, write or admin", rule.Permission))
			}
			return f.run(cmd, 0, func(ctx context.Context, c *client.Client, out printer) error {
				var err error
				if verb == "grant" {
					err = c.Grant(ctx, a[0], rule)
				} else {
					err = c.Revoke(ctx, a[0], rule)
				}
				if err != nil {
					return err
				}
				return out.rule(done, a[0], rule)
			})
		},
	}
}

func aclRules(f *common) *cobra.Command {
	var stale bool
	cmd := &cobra.Command{
		Use:   "rules [PRINCIPAL]",
		Short: "List the rules, of every principal or of one",
		Args:  args(0, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return f.run(cmd, 0, func(ctx context.Context, c *client.Client, out printer) error {
				ps, err := principals(ctx, c, stale)
				if err != nil {
					return err
				}
				if len(a) == 1 {
					ps = onlyPrincipal(ps, a[0])
					if ps == nil {
						return fmt.Errorf("%w: principal %q", client.ErrNotFound, a[0])
					}
				}
				return out.rules(ps)
			})
		},
	}
	cmd.Flags().BoolVar(&stale, "stale", false, "read the answering node's replica")
	return cmd
}

func onlyPrincipal(ps []client.Principal, name string) []client.Principal {
	for _, p := range ps {
		if p.Name == name {
			return []client.Principal{p}
		}
	}
	return nil
}

// Output of the acl commands.

func (p printer) token(t client.Token) error {
	return p.emit(t, func(w io.Writer) {
		field(w, "principal", t.Principal)
		field(w, "token id", t.ID)
		field(w, "token", t.Secret)
		fmt.Fprintln(w, "# The token is shown once: the cluster keeps only its SHA-256.")
	})
}

func (p printer) identity(id client.Identity) error {
	if id.Rules == nil {
		id.Rules = []client.Rule{}
	}
	return p.emit(id, func(w io.Writer) {
		if !id.AuthEnabled {
			fmt.Fprintln(w, "access control is off on the answering node: every request is permitted")
			return
		}
		field(w, "principal", id.Principal)
		field(w, "authenticated by", id.AuthenticatedBy)
		field(w, "rules", rulesText(id.Rules))
	})
}

func (p printer) done(verb, key, value string) error {
	v := map[string]string{key: value}
	return p.emit(v, func(w io.Writer) { fmt.Fprintf(w, "%s %s\n", verb, value) })
}

func (p printer) rule(verb, principal string, r client.Rule) error {
	v := struct {
		Principal string      `json:"principal"`
		Rule      client.Rule `json:"rule"`
	}{principal, r}
	return p.emit(v, func(w io.Writer) { fmt.Fprintf(w, "%s %s %s\n", verb, principal, ruleText(r)) })
}

func (p printer) principals(ps []client.Principal) error {
	ps = normalized(ps)
	return p.emit(ps, func(w io.Writer) {
		fmt.Fprintln(w, "PRINCIPAL\tRULES\tTOKENS")
		for _, pr := range ps {
			fmt.Fprintf(w, "%s\t%s\t%s\n", pr.Name, rulesText(pr.Rules), listText(pr.TokenIDs))
		}
	})
}

func (p printer) rules(ps []client.Principal) error {
	type ruleRow struct {
		Principal  string `json:"principal"`
		Permission string `json:"permission"`
		Prefix     string `json:"prefix"`
	}
	rows := []ruleRow{}
	for _, pr := range ps {
		for _, r := range pr.Rules {
			rows = append(rows, ruleRow{pr.Name, r.Permission, r.Prefix})
		}
	}
	return p.emit(rows, func(w io.Writer) {
		fmt.Fprintln(w, "PRINCIPAL\tPERMISSION\tPREFIX")
		for _, r := range rows {
			fmt.Fprintf(w, "%s\t%s\t%s\n", r.Principal, r.Permission, prefixText(r.Prefix))
		}
	})
}

// normalized gives every principal non-nil lists, so JSON shows [] rather than null.
func normalized(ps []client.Principal) []client.Principal {
	out := make([]client.Principal, 0, len(ps))
	for _, p := range ps {
		if p.Rules == nil {
			p.Rules = []client.Rule{}
		}
		if p.TokenIDs == nil {
			p.TokenIDs = []string{}
		}
		out = append(out, p)
	}
	return out
}

func ruleText(r client.Rule) string { return r.Permission + " " + prefixText(r.Prefix) }

// prefixText shows the empty prefix, which covers every name, as "*".
func prefixText(prefix string) string {
	if prefix == "" {
		return "*"
	}
	return strconv.Quote(prefix)
}

func rulesText(rs []client.Rule) string {
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		parts = append(parts, ruleText(r))
	}
	return listText(parts)
}

func listText(items []string) string {
	if len(items) == 0 {
		return "-"
	}
	return strings.Join(items, ", ")
}
