package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/recsys-dev/recsys/internal/access"
)

// runTokenNew prints a fresh token (give it to the caller) and the line for
// recsysd's tokens file (which holds only the token's hash).
func runTokenNew(_ context.Context, x *invocation) error {
	args, err := x.exactly(2)
	if err != nil {
		return fmt.Errorf("%w (ROLES: %s, joined by '+')", err, strings.Join(access.RoleNames(), ", "))
	}
	roles, err := access.ParseRoles(args[0])
	if err != nil {
		return err
	}
	tok, err := access.NewToken()
	if err != nil {
		return err
	}
	line := access.TokenLine(roles, args[1], tok)
	if _, err := access.ParseTokens(strings.NewReader(line), "new token"); err != nil {
		return err // an invalid name
	}
	_, err = fmt.Fprintf(x.stdout, "token (give to the caller, RECSYS_TOKEN):\n%s\ntokens-file line (for recsysd):\n%s\n", tok, line)
	return err
}
