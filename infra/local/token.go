package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/rollcall/rollcall/internal/app"
	"github.com/rollcall/rollcall/internal/auth"
)

// cmdToken prints a local-stage bearer token: token USERNAME [--admin] [--email E].
// Flags may come before or after the username (make passes them after).
func cmdToken(args []string) error {
	var username, email string
	admin := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--admin" || a == "-admin":
			admin = true
		case a == "--email" || a == "-email":
			if i+1 >= len(args) {
				return fmt.Errorf("--email needs an address")
			}
			i++
			email = args[i]
		case strings.HasPrefix(a, "--email="):
			email = strings.TrimPrefix(a, "--email=")
		case strings.HasPrefix(a, "-"):
			return fmt.Errorf("unknown flag %s (usage: token USERNAME [--admin] [--email E])", a)
		case username == "":
			username = a
		default:
			return fmt.Errorf("one username only (usage: token USERNAME [--admin] [--email E])")
		}
	}
	if username == "" {
		return fmt.Errorf("usage: token USERNAME [--admin] [--email E]")
	}
	if email == "" {
		email = username + "@example.com"
	}
	secret := envOr("JWT_SECRET", app.DefaultLocalJWTSecret)
	tok, err := auth.IssueLocal([]byte(secret), username, email, admin, auth.DefaultMaxLifetime)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stdout, tok)
	return nil
}
