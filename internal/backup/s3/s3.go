// Package s3 keeps backups in S3-compatible object storage (AWS S3, Ceph,
// Garage, SeaweedFS, versitygw…), through github.com/minio/minio-go/v7.
package s3

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"path"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/gatehouse/gatehouse/internal/backup"
)

// partSize bounds the memory an upload of unknown length buffers.
const partSize = 16 << 20

// Store is a backup.Destination in one bucket, under a key prefix. It is
// safe for concurrent use.
type Store struct {
	c      *minio.Client
	bucket string
	prefix string // "" or ending in "/"
}

var _ backup.Destination = (*Store)(nil)

// Open returns the Store a URL names:
//
//	s3://bucket/prefix?endpoint=https://s3.example:9000&region=eu-west-1
//
// Without endpoint it is AWS S3 (s3.amazonaws.com). An http:// endpoint
// is refused unless it is a loopback address. Credentials are read with
// getenv from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN; none means anonymous requests.
func Open(rawURL string, getenv func(string) string) (*Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "s3" || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("backup.url: must be s3://bucket/prefix, not %q", rawURL)
	}
	q := u.Query()
	endpoint, secure := "s3.amazonaws.com", true
	if e := q.Get("endpoint"); e != "" {
		eu, err := url.Parse(e)
		if err != nil || (eu.Scheme != "https" && eu.Scheme != "http") || eu.Host == "" || (eu.Path != "" && eu.Path != "/") {
			return nil, fmt.Errorf("backup.url: endpoint must be http(s)://host[:port], not %q", e)
		}
		if eu.Scheme == "http" && !loopback(eu.Hostname()) {
			return nil, fmt.Errorf("backup.url: endpoint %s is plain http beyond this host; use https", e)
		}
		endpoint, secure = eu.Host, eu.Scheme == "https"
	}
	creds := credentials.NewStaticV4(getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"), getenv("AWS_SESSION_TOKEN"))
	c, err := minio.New(endpoint, &minio.Options{Creds: creds, Secure: secure, Region: q.Get("region")})
	if err != nil {
		return nil, fmt.Errorf("backup.url: %w", err)
	}
	prefix := strings.Trim(u.Path, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &Store{c: c, bucket: u.Host, prefix: prefix}, nil
}

func loopback(host string) bool {
	return host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1"
}

// Put implements backup.Destination: a multipart upload, which the object
// appears from only once complete (minio-go aborts a failed one).
func (s *Store) Put(ctx context.Context, name string, r io.Reader) error {
	_, err := s.c.PutObject(ctx, s.bucket, s.prefix+name, r, -1, minio.PutObjectOptions{
		ContentType: "application/octet-stream", PartSize: partSize,
		// No aws-chunked payload signing (used only over plain http, which
		// Open allows only on loopback): some S3-compatible servers store
		// its framing inside multipart parts, and the backup is
		// authenticated by age anyway.
		DisableContentSha256: true,
	})
	if err != nil {
		return fmt.Errorf("upload %s: %w", s.Location(name), err)
	}
	return nil
}

// Open implements backup.Destination.
func (s *Store) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if backup.IDOf(name) == "" {
		return nil, fmt.Errorf("open backup %q: %w", name, fs.ErrNotExist)
	}
	obj, err := s.c.GetObject(ctx, s.bucket, s.prefix+name, minio.GetObjectOptions{})
	if err == nil {
		_, err = obj.Stat() // GetObject is lazy: this is the request
	}
	if err != nil {
		if obj != nil {
			obj.Close()
		}
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil, fmt.Errorf("open %s: %w", s.Location(name), fs.ErrNotExist)
		}
		return nil, fmt.Errorf("open %s: %w", s.Location(name), err)
	}
	return obj, nil
}

// List implements backup.Destination.
func (s *Store) List(ctx context.Context) ([]backup.Object, error) {
	var out []backup.Object
	for o := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix}) {
		if o.Err != nil {
			if minio.ToErrorResponse(o.Err).Code == "NoSuchBucket" {
				return nil, nil
			}
			return nil, fmt.Errorf("list %s: %w", s.Location(""), o.Err)
		}
		name := path.Base(o.Key)
		if o.Key != s.prefix+name || backup.IDOf(name) == "" {
			continue
		}
		out = append(out, backup.Object{Name: name, Size: o.Size, Modified: o.LastModified})
	}
	return out, nil
}

// Delete implements backup.Destination.
func (s *Store) Delete(ctx context.Context, name string) error {
	if backup.IDOf(name) == "" {
		return fmt.Errorf("delete backup %q: %w", name, fs.ErrNotExist)
	}
	if err := s.c.RemoveObject(ctx, s.bucket, s.prefix+name, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("delete %s: %w", s.Location(name), err)
	}
	return nil
}

// Location implements backup.Destination.
func (s *Store) Location(name string) string {
	return "s3://" + s.bucket + "/" + s.prefix + name
}
