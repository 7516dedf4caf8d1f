package local_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/internal/testenv"
)

// TestMongoStandinAuthenticatesWithSCRAM starts a private stand-in with users (--user) and has
// the Go driver authenticate the way it does against a real server started with --auth: the
// mechanism negotiated from hello's saslSupportedMechs, or named, through saslStart and
// saslContinue; a wrong password, an unknown user and a client without credentials are refused
// with the real server's codes; and a conversation run by hand shows the messages themselves.
func TestMongoStandinAuthenticatesWithSCRAM(t *testing.T) {
	base := testenv.StartMongo(t, "--user", "debezium:dbz", "--user", "reader:an other secret")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// connect connects as user (none when empty) with the connection string's extra options,
	// as a user writes them.
	connect := func(t *testing.T, user, password string, query ...string) *mongo.Client {
		t.Helper()
		u, err := url.Parse(base)
		if err != nil {
			t.Fatalf("parse %s: %v", base, err)
		}
		if user != "" {
			u.User = url.UserPassword(user, password)
		}
		u.RawQuery = strings.Join(append([]string{u.RawQuery}, query...), "&")
		client, err := mongo.Connect(options.Client().ApplyURI(u.String()).SetServerSelectionTimeout(5 * time.Second))
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
		return client
	}

	t.Run("hello lists a user's mechanisms", func(t *testing.T) {
		for user, want := range map[string]bson.A{"admin.debezium": {"SCRAM-SHA-1", "SCRAM-SHA-256"}, "admin.nobody": nil} {
			var reply struct {
				Mechs bson.A `bson:"saslSupportedMechs"`
			}
			err := connect(t, "", "").Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}, {Key: "saslSupportedMechs", Value: user}}).Decode(&reply)
			if err != nil || !reflect.DeepEqual(reply.Mechs, want) {
				t.Errorf("hello with saslSupportedMechs %s: %v (err %v), want %v", user, reply.Mechs, err, want)
			}
		}
	})

	accepted := []struct {
		name, user, password string
		query                []string
	}{
		{"negotiated", "debezium", "dbz", nil},
		{"SCRAM-SHA-256", "debezium", "dbz", []string{"authMechanism=SCRAM-SHA-256"}},
		{"SCRAM-SHA-1", "debezium", "dbz", []string{"authMechanism=SCRAM-SHA-1"}},
		{"a password with spaces, authSource admin", "reader", "an other secret", []string{"authSource=admin"}},
	}
	for i, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			coll := connect(t, tc.user, tc.password, tc.query...).Database("authtest").Collection("docs")
			cs, err := coll.Watch(ctx, mongo.Pipeline{})
			if err != nil {
				t.Fatalf("open change stream: %v", err)
			}
			defer func() { _ = cs.Close(ctx) }()
			if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: i}}); err != nil {
				t.Fatalf("insert: %v", err)
			}
			if !cs.Next(ctx) {
				t.Fatalf("no change event: %v", cs.Err())
			}
		})
	}

	refused := []struct {
		name, user, password string
		query                []string
		wantCode             int32
		wantName             string
		wantInMessage        string
	}{
		// The driver names the mechanism it used: SCRAM-SHA-256, as hello offered it.
		{"wrong password", "debezium", "not dbz", nil, 18, "AuthenticationFailed", `"SCRAM-SHA-256"`},
		{"wrong password, SCRAM-SHA-1", "debezium", "DBZ", []string{"authMechanism=SCRAM-SHA-1"}, 18, "AuthenticationFailed", `"SCRAM-SHA-1"`},
		{"unknown user", "nobody", "dbz", nil, 18, "AuthenticationFailed", ""},
		{"user of another database", "debezium", "dbz", []string{"authSource=inventory"}, 18, "AuthenticationFailed", ""},
		{"no credentials", "", "", nil, 13, "Unauthorized", "Command insert requires authentication"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			coll := connect(t, tc.user, tc.password, tc.query...).Database("authtest").Collection("docs")
			_, err := coll.InsertOne(ctx, bson.D{{Key: "x", Value: 1}})
			var cmdErr mongo.CommandError
			if !errors.As(err, &cmdErr) || cmdErr.Code != tc.wantCode || cmdErr.Name != tc.wantName || !strings.Contains(err.Error(), tc.wantInMessage) {
				t.Fatalf("insert: error %v, want code %d (%s) and %s in the message", err, tc.wantCode, tc.wantName, tc.wantInMessage)
			}
			t.Logf("refused: %v", err)
		})
	}

	t.Run("a client that does not skip the empty exchange", func(t *testing.T) { scramByHand(t, ctx, base) })

	t.Run("ping needs no credentials", func(t *testing.T) {
		if err := connect(t, "", "").Ping(ctx, nil); err != nil {
			t.Fatalf("ping without credentials: %v", err)
		}
	})
}

// scramByHand runs a SCRAM-SHA-256 conversation for debezium:dbz by hand, as a client that does
// not send skipEmptyExchange does: the server's final message then comes with done: false, and
// only the client's empty reply to it ends the conversation. The connection (the pool holds
// one) may run commands after that and not before.
func scramByHand(t *testing.T, ctx context.Context, base string) {
	client, err := mongo.Connect(options.Client().ApplyURI(base).SetMaxPoolSize(1))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	admin := client.Database("admin")

	type saslReply struct {
		ConversationID int32  `bson:"conversationId"`
		Done           bool   `bson:"done"`
		Payload        []byte `bson:"payload"`
	}
	run := func(cmd bson.D) saslReply {
		t.Helper()
		var r saslReply
		if err := admin.RunCommand(ctx, cmd).Decode(&r); err != nil {
			t.Fatalf("%s: %v", cmd[0].Key, err)
		}
		return r
	}
	insert := func() error {
		_, err := client.Database("authtest").Collection("docs").InsertOne(ctx, bson.D{{Key: "x", Value: 1}})
		return err
	}
	if insert() == nil {
		t.Fatalf("insert before authenticating succeeded")
	}

	clientFirstBare := "n=debezium,r=fyko+d2lbbFgONRv9qkxdawL"
	first := run(bson.D{{Key: "saslStart", Value: 1}, {Key: "mechanism", Value: "SCRAM-SHA-256"},
		{Key: "payload", Value: []byte("n,," + clientFirstBare)}})
	if first.Done {
		t.Fatalf("saslStart replied done")
	}
	attrs := map[string]string{}
	for _, kv := range strings.Split(string(first.Payload), ",") {
		attrs[kv[:1]] = kv[2:]
	}
	salt, err := base64.StdEncoding.DecodeString(attrs["s"])
	if err != nil || !strings.HasPrefix(attrs["r"], "fyko+d2lbbFgONRv9qkxdawL") || attrs["i"] != "15000" {
		t.Fatalf("server-first-message %q: nonce must extend the client's, iterations 15000 (salt err %v)", first.Payload, err)
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	salted, err := pbkdf2.Key(sha256.New, "dbz", salt, 15000, sha256.Size)
	if err != nil {
		t.Fatalf("pbkdf2: %v", err)
	}
	withoutProof := "c=biws,r=" + attrs["r"]
	authMessage := clientFirstBare + "," + string(first.Payload) + "," + withoutProof
	clientKey := mac(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	proof := mac(stored[:], authMessage)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}

	final := run(bson.D{{Key: "saslContinue", Value: 1}, {Key: "conversationId", Value: first.ConversationID},
		{Key: "payload", Value: []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof))}})
	want := "v=" + base64.StdEncoding.EncodeToString(mac(mac(salted, "Server Key"), authMessage))
	if final.Done || !bytes.Equal(final.Payload, []byte(want)) {
		t.Fatalf("server-final-message: done %v, payload %q; want done false and %q", final.Done, final.Payload, want)
	}
	if insert() == nil {
		t.Fatalf("insert before the empty exchange succeeded")
	}
	end := run(bson.D{{Key: "saslContinue", Value: 1}, {Key: "conversationId", Value: first.ConversationID}, {Key: "payload", Value: []byte{}}})
	if !end.Done || len(end.Payload) != 0 {
		t.Fatalf("reply to the empty exchange: done %v, payload %q; want done and nothing", end.Done, end.Payload)
	}
	if err := insert(); err != nil {
		t.Fatalf("insert after authenticating: %v", err)
	}
}
