using System.Collections.Frozen;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Lodestar.Endpoints;

/// <summary>
/// One instance of a service: where it listens and what the registry says about it. Immutable.
/// </summary>
/// <remarks>
/// Two endpoints are the same instance (<see cref="Equals(DiscoveredEndpoint?)"/>) when scheme, host and port match;
/// weight, zone, priority and metadata are attributes of that instance that may change over time.
/// </remarks>
public sealed class DiscoveredEndpoint : IEquatable<DiscoveredEndpoint>
{
    private static readonly IReadOnlyDictionary<string, string> s_noMetadata = FrozenDictionary<string, string>.Empty;

    private object? _portTag;

    private DiscoveredEndpoint(string host, int port, string? scheme, int weight, int priority, string? zone, IReadOnlyDictionary<string, string> metadata)
    {
        Host = host;
        Port = port;
        Scheme = scheme;
        Weight = weight;
        Priority = priority;
        Zone = zone;
        Metadata = metadata;
        Address = FormatAddress(host, port);
    }

    /// <summary>Gets the host: an IP address literal (IPv6 without brackets) or a DNS name.</summary>
    public string Host { get; }

    /// <summary>Gets the TCP port, 1 to 65535.</summary>
    public int Port { get; }

    /// <summary>Gets <see cref="Port"/> boxed once, for metric and span tags (a benign race may box it twice).</summary>
    internal object PortTag => _portTag ??= Diagnostics.Internal.HttpSemanticConventions.Box(Port);

    /// <summary>Gets the scheme this instance serves (<c>http</c> or <c>https</c>), or <see langword="null"/> to use the scheme the caller asked for.</summary>
    public string? Scheme { get; }

    /// <summary>Gets the relative weight, 0 to 1,000,000 (default 1). Weight 0 means the instance takes no new traffic.</summary>
    public int Weight { get; }

    /// <summary>Gets the priority group, 0 (default) being the most preferred.</summary>
    public int Priority { get; }

    /// <summary>Gets the locality zone of the instance, or <see langword="null"/> when unknown.</summary>
    public string? Zone { get; }

    /// <summary>Gets the registry's metadata for the instance (labels, tags, node names). Never <see langword="null"/>.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Gets the authority as <c>host:port</c>, with IPv6 literals bracketed (<c>[::1]:8080</c>).</summary>
    public string Address { get; }

    /// <summary>The largest weight an endpoint may carry.</summary>
    public const int MaxWeight = 1_000_000;

    /// <summary>Creates an endpoint after validating every part.</summary>
    /// <param name="host">IP literal or DNS name; brackets around IPv6 literals are accepted and removed.</param>
    /// <param name="port">TCP port, 1 to 65535.</param>
    /// <param name="scheme"><c>http</c>, <c>https</c> or <see langword="null"/>.</param>
    /// <param name="weight">Relative weight, 0 to <see cref="MaxWeight"/>.</param>
    /// <param name="zone">Locality zone, or <see langword="null"/>.</param>
    /// <param name="metadata">Registry metadata, or <see langword="null"/> for none.</param>
    /// <param name="priority">Priority group, 0 or more; 0 is the most preferred.</param>
    /// <returns>The endpoint.</returns>
    /// <exception cref="ArgumentException">A part is out of range or malformed; the message names it.</exception>
    public static DiscoveredEndpoint Create(string host, int port, string? scheme = null, int weight = 1, string? zone = null,
        IReadOnlyDictionary<string, string>? metadata = null, int priority = 0)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (!TryCreate(host, port, scheme, weight, zone, metadata, priority, out var endpoint, out var error))
        {
            throw new ArgumentException(error);
        }

        return endpoint;
    }

    /// <summary>Creates an endpoint, or says what is wrong with the parts.</summary>
    /// <param name="host">IP literal or DNS name.</param>
    /// <param name="port">TCP port.</param>
    /// <param name="scheme">Scheme or <see langword="null"/>.</param>
    /// <param name="weight">Relative weight.</param>
    /// <param name="zone">Zone or <see langword="null"/>.</param>
    /// <param name="metadata">Metadata or <see langword="null"/>.</param>
    /// <param name="priority">Priority group.</param>
    /// <param name="endpoint">The endpoint when valid.</param>
    /// <param name="error">What is wrong when invalid.</param>
    /// <returns><see langword="true"/> when the parts form a valid endpoint.</returns>
    public static bool TryCreate(string host, int port, string? scheme, int weight, string? zone,
        IReadOnlyDictionary<string, string>? metadata, int priority,
        [NotNullWhen(true)] out DiscoveredEndpoint? endpoint, [NotNullWhen(false)] out string? error)
    {
        endpoint = null;
        if (string.IsNullOrWhiteSpace(host))
        {
            error = "host is empty";
            return false;
        }

        if (host.Length > 2 && host[0] == '[' && host[^1] == ']')
        {
            host = host[1..^1];
        }

        if (!IsValidHost(host))
        {
            error = $"host '{host}' is neither an IP address nor a valid DNS name";
            return false;
        }

        if (port is < 1 or > 65535)
        {
            error = $"port {port.ToString(CultureInfo.InvariantCulture)} is outside 1-65535";
            return false;
        }

        if (scheme is not null)
        {
            scheme = scheme.ToLowerInvariant();
            if (scheme is not ("http" or "https"))
            {
                error = $"scheme '{scheme}' is not http or https";
                return false;
            }
        }

        if (weight is < 0 or > MaxWeight)
        {
            error = $"weight {weight.ToString(CultureInfo.InvariantCulture)} is outside 0-{MaxWeight.ToString(CultureInfo.InvariantCulture)}";
            return false;
        }

        if (priority < 0)
        {
            error = $"priority {priority.ToString(CultureInfo.InvariantCulture)} is negative";
            return false;
        }

        var meta = metadata is null || metadata.Count == 0 ? s_noMetadata : metadata.ToFrozenDictionary(StringComparer.Ordinal);
        endpoint = new DiscoveredEndpoint(host, port, scheme, weight, priority, string.IsNullOrEmpty(zone) ? null : zone, meta);
        error = null;
        return true;
    }

    /// <summary>
    /// Parses <c>scheme://host:port</c>, <c>host:port</c> or <c>[v6]:port</c> into an endpoint.
    /// </summary>
    /// <param name="text">The text to parse.</param>
    /// <param name="defaultPort">Port used when the text has none (a URI's default port applies first); 0 means a port is required.</param>
    /// <param name="endpoint">The endpoint when valid.</param>
    /// <param name="error">What is wrong when invalid.</param>
    /// <returns><see langword="true"/> when the text is a valid endpoint.</returns>
    public static bool TryParse(string? text, int defaultPort, [NotNullWhen(true)] out DiscoveredEndpoint? endpoint, [NotNullWhen(false)] out string? error)
    {
        endpoint = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "the address is empty";
            return false;
        }

        text = text.Trim();
        if (text.Contains("://", StringComparison.Ordinal))
        {
            if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
            {
                error = $"'{text}' is not a valid absolute URI";
                return false;
            }

            if (uri.Scheme is not ("http" or "https"))
            {
                error = $"'{text}' has scheme '{uri.Scheme}', expected http or https";
                return false;
            }

            if (uri.AbsolutePath.Length > 1 || uri.Query.Length > 0 || uri.Fragment.Length > 0 || uri.UserInfo.Length > 0)
            {
                error = $"'{text}' must be scheme://host:port with no path, query or user info";
                return false;
            }

            var port = uri.IsDefaultPort && !HasExplicitPort(text) ? (defaultPort > 0 ? defaultPort : uri.Port) : uri.Port;
            return TryCreate(uri.Host, port, uri.Scheme, 1, null, null, 0, out endpoint, out error);
        }

        string host;
        string? portText;
        if (text[0] == '[')
        {
            var close = text.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                error = $"'{text}' opens an IPv6 bracket but never closes it";
                return false;
            }

            host = text[1..close];
            var rest = text[(close + 1)..];
            if (rest.Length > 0 && rest[0] != ':')
            {
                error = $"'{text}' has unexpected text after the IPv6 address";
                return false;
            }

            portText = rest.Length > 0 ? rest[1..] : null;
        }
        else
        {
            var colon = text.LastIndexOf(':');
            if (colon >= 0 && text.IndexOf(':', StringComparison.Ordinal) != colon)
            {
                // A bare IPv6 literal without brackets has no port.
                host = text;
                portText = null;
            }
            else if (colon >= 0)
            {
                host = text[..colon];
                portText = text[(colon + 1)..];
            }
            else
            {
                host = text;
                portText = null;
            }
        }

        int parsedPort;
        if (portText is null)
        {
            if (defaultPort <= 0)
            {
                error = $"'{text}' has no port";
                return false;
            }

            parsedPort = defaultPort;
        }
        else if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out parsedPort))
        {
            error = $"'{text}' has a port that is not a number";
            return false;
        }

        if (!TryCreate(host, parsedPort, null, 1, null, null, 0, out endpoint, out var inner))
        {
            error = $"'{text}': {inner}";
            return false;
        }

        error = null;
        return true;
    }

    /// <summary>Returns a copy with other attributes; identity (scheme, host, port) is kept.</summary>
    /// <param name="weight">New weight, or <see langword="null"/> to keep.</param>
    /// <param name="zone">New zone, or <see langword="null"/> to keep.</param>
    /// <param name="metadata">New metadata, or <see langword="null"/> to keep.</param>
    /// <param name="priority">New priority, or <see langword="null"/> to keep.</param>
    /// <returns>The new endpoint.</returns>
    public DiscoveredEndpoint With(int? weight = null, string? zone = null, IReadOnlyDictionary<string, string>? metadata = null, int? priority = null)
        => Create(Host, Port, Scheme, weight ?? Weight, zone ?? Zone, metadata ?? Metadata, priority ?? Priority);

    /// <summary>Returns whether every attribute, not only identity, is equal.</summary>
    /// <param name="other">The other endpoint.</param>
    /// <returns><see langword="true"/> when identical in every attribute.</returns>
    public bool IsIdenticalTo(DiscoveredEndpoint? other)
    {
        if (other is null || !Equals(other) || other.Weight != Weight || other.Priority != Priority
            || !string.Equals(other.Zone, Zone, StringComparison.Ordinal) || other.Metadata.Count != Metadata.Count)
        {
            return false;
        }

        foreach (var pair in Metadata)
        {
            if (!other.Metadata.TryGetValue(pair.Key, out var value) || !string.Equals(value, pair.Value, StringComparison.Ordinal))
            {
                return false;
            }
        }

        return true;
    }

    /// <inheritdoc/>
    public bool Equals(DiscoveredEndpoint? other)
        => other is not null
           && other.Port == Port
           && string.Equals(other.Host, Host, StringComparison.OrdinalIgnoreCase)
           && string.Equals(other.Scheme, Scheme, StringComparison.Ordinal);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is DiscoveredEndpoint other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(StringComparer.OrdinalIgnoreCase.GetHashCode(Host), Port, Scheme);

    /// <inheritdoc/>
    public override string ToString() => Scheme is null ? Address : string.Concat(Scheme, "://", Address);

    /// <summary>Formats a host and port as <c>host:port</c>, with an IPv6 literal in brackets (<c>[::1]:8080</c>).</summary>
    /// <param name="host">A host name or an IP address (IPv6 without brackets).</param>
    /// <param name="port">The port.</param>
    /// <returns>The address as an authority, as <see cref="Address"/> spells it.</returns>
    public static string FormatAddress(string host, int port)
    {
        var portText = port.ToString(CultureInfo.InvariantCulture);
        return host.Contains(':', StringComparison.Ordinal) ? string.Concat("[", host, "]:", portText) : string.Concat(host, ":", portText);
    }

    private static bool HasExplicitPort(string uriText)
    {
        var authorityStart = uriText.IndexOf("://", StringComparison.Ordinal) + 3;
        var authorityEnd = uriText.IndexOf('/', authorityStart);
        var authority = authorityEnd < 0 ? uriText[authorityStart..] : uriText[authorityStart..authorityEnd];
        var bracket = authority.LastIndexOf(']');
        return authority.LastIndexOf(':') > bracket;
    }

    private static bool IsValidHost(string host)
    {
        if (IPAddress.TryParse(host, out var ip))
        {
            return ip.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6;
        }

        return Uri.CheckHostName(host) == UriHostNameType.Dns;
    }
}
