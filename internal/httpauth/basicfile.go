package httpauth

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
)

// parseBasicFile reads a users file as Kafka Connect's BasicAuthSecurityRestExtension does
// (JAAS PropertyFileLoginModule, Jetty's property user store), one user a line:
//
//	# comment
//	alice: a-long-password,admin
//	bob: another-password,read-only
//
// The separator may be ':' or '=', as in a Java properties file; blank lines and lines
// starting with '#' or '!' are skipped. A user needs the role admin or read-only (readonly
// too; case does not matter); other roles, which a file shared with Connect may have, are
// ignored, and admin wins over read-only. Passwords are given as they are: Jetty's OBF:, MD5:
// and CRYPT: forms are refused rather than taken as the password itself. Every problem is
// reported at once, by line, never with a password.
func parseBasicFile(data []byte) (map[string]credential, error) {
	users := map[string]credential{}
	var errs []error
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		n := i + 1
		sep := strings.IndexAny(line, ":=")
		if sep < 0 {
			errs = append(errs, fmt.Errorf("line %d is not user: password,role", n))
			continue
		}
		name := strings.TrimSpace(line[:sep])
		fields := strings.Split(line[sep+1:], ",")
		password := strings.TrimSpace(fields[0])
		role, err := parseRoles(fields[1:])
		switch {
		case name == "":
			err = fmt.Errorf("line %d has no user name before %q", n, line[sep])
		case users[name].role != 0:
			err = fmt.Errorf("line %d: user %q is listed twice", n, name)
		case password == "":
			err = fmt.Errorf("line %d: user %q has no password", n, name)
		case hashed(password):
			err = fmt.Errorf("line %d: user %q has an obfuscated or hashed password (OBF:, MD5:, CRYPT:), which mongorelay does not read: give the password itself and keep the file readable by the node only", n, name)
		case err != nil:
			err = fmt.Errorf("line %d: user %q %w", n, name, err)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		users[name] = credential{digest: sha256.Sum256([]byte(password)), role: role}
	}
	if len(errs) == 0 && len(users) == 0 {
		errs = append(errs, errors.New("has no users: give one per line, user: password,admin or user: password,read-only"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return users, nil
}

// parseRoles returns the strongest of roles that mongorelay knows.
func parseRoles(roles []string) (Role, error) {
	var role Role
	var others []string
	for _, r := range roles {
		r = strings.TrimSpace(r)
		switch strings.ToLower(r) {
		case "admin":
			role = Admin
		case "read-only", "readonly":
			role = max(role, ReadOnly)
		case "":
		default:
			others = append(others, r)
		}
	}
	if role == 0 {
		if len(others) > 0 {
			return 0, fmt.Errorf("has roles %q, none of them admin or read-only: add ,admin or ,read-only", others)
		}
		return 0, errors.New("has no role: end the line with ,admin or ,read-only")
	}
	return role, nil
}

// hashed reports whether a password is in one of Jetty's encoded forms.
func hashed(password string) bool {
	for _, prefix := range []string{"OBF:", "MD5:", "CRYPT:"} {
		if strings.HasPrefix(password, prefix) {
			return true
		}
	}
	return false
}
