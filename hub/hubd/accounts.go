package hubd

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
	"github.com/kentongan/kentongan/hub/route"
)

// openAccounts makes the account service over the hub's database. Agency users must name an
// agency of the routing configuration in force.
func (m *Main) openAccounts(ctx context.Context, store account.Store, routes *route.Router) (*account.Service, error) {
	svc, err := account.NewService(account.Options{
		Store:  store,
		Clock:  m.Clock,
		Logger: m.Logger.With("component", "accounts"),
		AgencyExists: func(id string) bool {
			_, ok := routes.Table().Agency(id)
			return ok
		},
	})
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	users, err := svc.Users(ctx)
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	if len(users) == 0 && !m.Demo {
		m.Logger.Warn("no user can log in yet: create the first administrator with "+
			"kentongan-hub user add --data DIR --name NAME --role admin", "data", m.Config.DataDir)
	}
	return svc, nil
}

// IssueToken returns a new API token for the user name, making the user first, with role and
// agency and a random password nobody is told, if there is none. The demo and tests use it to
// reach the API as someone; people get tokens with "kentongan-hub token add" or the API.
func (m *Main) IssueToken(ctx context.Context, name, role, agency string) (string, error) {
	m.mu.Lock()
	svc := m.Accounts
	m.mu.Unlock()
	if svc == nil {
		return "", errors.New("hub: not running")
	}
	by := account.Actor{CLI: "hub"}
	if _, err := svc.User(ctx, name); hub.ErrorCode(err) == hub.CodeNotFound {
		pw, err := RandomPassword()
		if err != nil {
			return "", err
		}
		if _, err := svc.CreateUser(ctx, by, account.NewUser{Name: name, Role: role, Agency: agency, Password: pw}); err != nil {
			return "", fmt.Errorf("hub: user %s: %w", name, err)
		}
	} else if err != nil {
		return "", fmt.Errorf("hub: user %s: %w", name, err)
	}
	_, token, err := svc.CreateToken(ctx, by, name, "issued by the hub", account.ScopeAPI, 0)
	if err != nil {
		return "", fmt.Errorf("hub: token for %s: %w", name, err)
	}
	return token, nil
}

// RandomPassword returns a password of 26 random characters (128 bits), for accounts made by a
// program, such as the demo's operator.
func RandomPassword() (string, error) {
	return rand.Text(), nil
}
