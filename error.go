package gatehouse

import (
	"errors"
	"fmt"
	"net/http"
)

// Error codes. Each maps to one HTTP status (see HTTPStatus).
const (
	EINVALID         = "invalid"         // 400
	EUNAUTHORIZED    = "unauthenticated" // 401
	EFORBIDDEN       = "forbidden"       // 403
	ENOTFOUND        = "not_found"       // 404
	EMETHOD          = "method_not_allowed"
	ECONFLICT        = "conflict"               // 409
	ETOOLARGE        = "too_large"              // 413
	EREQUESTTIMEOUT  = "request_timeout"        // 408: the client sent too slowly
	EUNPROCESSABLE   = "unprocessable"          // 422
	EUNSUPPORTED     = "unsupported_media_type" // 415
	ERATELIMITED     = "rate_limited"           // 429
	EHEADERSTOOLARGE = "headers_too_large"      // 431
	EINTERNAL        = "internal"               // 500
	EBADGATEWAY      = "bad_gateway"            // 502
	EUNAVAILABLE     = "unavailable"            // 503
	ELOCKDOWN        = "lockdown"               // 503: incident lockdown mode refuses the caller
	ETIMEOUT         = "timeout"                // 504
)

// Error is an error whose code and message are safe to show to a client.
// Anything that is not an *Error is reported to clients as an internal error.
type Error struct {
	Code    string
	Message string
	// Reasons and DecisionID explain an authorization denial.
	Reasons    []string
	DecisionID string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err, or EINTERNAL when err carries none.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of err, or "internal error".
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// HTTPStatus maps an error code to its HTTP status.
func HTTPStatus(code string) int {
	switch code {
	case EINVALID:
		return http.StatusBadRequest
	case EUNAUTHORIZED:
		return http.StatusUnauthorized
	case EFORBIDDEN:
		return http.StatusForbidden
	case ENOTFOUND:
		return http.StatusNotFound
	case EMETHOD:
		return http.StatusMethodNotAllowed
	case ECONFLICT:
		return http.StatusConflict
	case ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case EREQUESTTIMEOUT:
		return http.StatusRequestTimeout
	case EUNSUPPORTED:
		return http.StatusUnsupportedMediaType
	case EUNPROCESSABLE:
		return http.StatusUnprocessableEntity
	case ERATELIMITED:
		return http.StatusTooManyRequests
	case EHEADERSTOOLARGE:
		return http.StatusRequestHeaderFieldsTooLarge
	case EBADGATEWAY:
		return http.StatusBadGateway
	case EUNAVAILABLE, ELOCKDOWN:
		return http.StatusServiceUnavailable
	case ETIMEOUT:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}
