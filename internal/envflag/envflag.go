// Package envflag fills flags that were not set on the command line from
// environment variables, so the same binary is configured by flags on a
// laptop and by env in Kubernetes. Flag "redis-addr" with prefix "RECSYS"
// reads RECSYS_REDIS_ADDR.
package envflag

import (
	"flag"
	"fmt"
	"strings"
)

// Name returns the variable that fills flag name.
func Name(prefix, name string) string {
	return prefix + "_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name))
}

// Fill sets every flag of fs that the command line left unset and whose
// variable getenv returns non-empty. A bad value is an error naming both.
func Fill(fs *flag.FlagSet, prefix string, getenv func(string) string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || set[f.Name] {
			return
		}
		env := Name(prefix, f.Name)
		if v := getenv(env); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q (flag --%s): %w", env, v, f.Name, e)
			}
		}
	})
	return err
}
