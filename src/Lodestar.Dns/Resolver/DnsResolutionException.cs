namespace Lodestar.Dns.Resolver;

/// <summary>
/// Thrown when no name server gave a usable answer: every server timed out, refused, failed (SERVFAIL) or sent a
/// malformed reply, in every attempt. The message names the query and the last server's failure.
/// </summary>
public sealed class DnsResolutionException : Exception
{
    /// <summary>Initializes a new instance.</summary>
    public DnsResolutionException()
        : this("No DNS server gave a usable answer.")
    {
    }

    /// <summary>Initializes a new instance with a message.</summary>
    /// <param name="message">What failed, naming the query.</param>
    public DnsResolutionException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance with a message and the underlying error.</summary>
    /// <param name="message">What failed, naming the query.</param>
    /// <param name="innerException">The last server's failure.</param>
    public DnsResolutionException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
