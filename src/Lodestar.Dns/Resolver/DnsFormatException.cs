namespace Lodestar.Dns.Resolver;

/// <summary>
/// Thrown when a DNS message is malformed: truncated, with a name that loops or is too long, or with record data that
/// does not match its type. The only exception the message parser throws.
/// </summary>
public sealed class DnsFormatException : Exception
{
    /// <summary>Initializes a new instance.</summary>
    public DnsFormatException()
        : this("The DNS message is malformed.")
    {
    }

    /// <summary>Initializes a new instance with a message.</summary>
    /// <param name="message">What is wrong with the message.</param>
    public DnsFormatException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance with a message and the underlying error.</summary>
    /// <param name="message">What is wrong with the message.</param>
    /// <param name="innerException">The underlying error.</param>
    public DnsFormatException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
