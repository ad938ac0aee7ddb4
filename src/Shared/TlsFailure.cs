using System.Security.Authentication;

namespace Lodestar.Internal;

/// <summary>
/// Recognises a failed TLS connection in an <see cref="HttpRequestException"/> and says what went wrong in words an
/// operator can act on. <see cref="HttpClient"/> reports a rejected server certificate as "The SSL connection could not
/// be established, see inner exception", and a client certificate the server refused (TLS 1.3 reports it after the
/// handshake, on the first read) as "An error occurred while sending the request", with the reason only further in or,
/// when the server closes the connection without a TLS alert, nowhere.
/// </summary>
internal static class TlsFailure
{
    /// <summary>Returns a description of the TLS failure in <paramref name="exception"/>, or <see langword="null"/> when it is none.</summary>
    /// <param name="exception">The failure of a request.</param>
    /// <param name="address">The server's address; only https addresses can fail this way.</param>
    /// <param name="clientCertificateConfigured">Whether a client certificate is configured.</param>
    /// <param name="serverCertificateHint">What the server's certificate must satisfy, given the configured trust, for example which CA file it must chain to.</param>
    /// <param name="clientCertificateHint">What to do about the client certificate: which options to set when none is configured, else what it must satisfy.</param>
    public static string? Describe(HttpRequestException exception, Uri address, bool clientCertificateConfigured, string serverCertificateHint, string clientCertificateHint)
    {
        ArgumentNullException.ThrowIfNull(exception);
        ArgumentNullException.ThrowIfNull(address);
        if (!string.Equals(address.Scheme, Uri.UriSchemeHttps, StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        var handshake = Find<AuthenticationException>(exception);
        var alert = FindAlert(exception);
        if (handshake is null && alert is null)
        {
            // Some servers (.NET's among them) close a TLS 1.3 connection that sent no certificate without an alert;
            // the client then sees the response end before it began.
            return exception.HttpRequestError == HttpRequestError.ResponseEnded && !clientCertificateConfigured
                ? $"the server closed the TLS connection without answering ({Trim(Innermost(exception).Message)}), as a server that requires a client certificate may do when none is sent; {clientCertificateHint}."
                : null;
        }

        if (handshake is not null && handshake.Message.Contains("remote certificate", StringComparison.OrdinalIgnoreCase))
        {
            // The server's certificate was not accepted: untrusted chain, wrong host name or none sent. A custom
            // validation callback's verdict carries no reason worth repeating; the hint says what is checked.
            var detail = handshake.Message.Contains(nameof(System.Net.Security.RemoteCertificateValidationCallback), StringComparison.Ordinal)
                ? string.Empty
                : ": " + Trim(handshake.Message);
            return $"TLS handshake failed, the server certificate was rejected{detail}; {serverCertificateHint}.";
        }

        // The server ended the connection with a TLS alert; "bad certificate", "certificate required" and "unknown ca"
        // are its verdict on the client certificate.
        var reason = alert?.Message ?? Innermost(handshake!).Message;
        var aboutClientCertificate = reason.Contains("certificate", StringComparison.OrdinalIgnoreCase)
                                     || reason.Contains("unknown ca", StringComparison.OrdinalIgnoreCase);
        return aboutClientCertificate
            ? $"TLS failed, the server refused the client certificate ({Trim(reason)}); {clientCertificateHint}."
            : $"TLS failed: {Trim(reason)}.";
    }

    private static T? Find<T>(Exception exception)
        where T : Exception
    {
        for (Exception? current = exception; current is not null; current = current.InnerException)
        {
            if (current is T found)
            {
                return found;
            }
        }

        return null;
    }

    /// <summary>Finds the exception that carries a TLS alert the peer sent (OpenSSL words it "... alert ...").</summary>
    private static Exception? FindAlert(Exception exception)
    {
        for (var current = exception.InnerException; current is not null; current = current.InnerException)
        {
            if (current.Message.Contains(" alert ", StringComparison.OrdinalIgnoreCase))
            {
                return current;
            }
        }

        return null;
    }

    private static Exception Innermost(Exception exception)
    {
        var current = exception;
        while (current.InnerException is not null)
        {
            current = current.InnerException;
        }

        return current;
    }

    private static string Trim(string message) => message.Trim().TrimEnd('.');
}
