using Lodestar.Endpoints;
using Lodestar.LoadBalancing;

namespace Lodestar.Http.Internal;

/// <summary>
/// Reads a logical request URI: <c>http://orders/path</c>, or a scheme preference list as Microsoft.Extensions.ServiceDiscovery
/// writes it (<c>https+http://orders/path</c>: https when the endpoint serves it, otherwise http).
/// </summary>
internal static class LogicalUri
{
    /// <summary>Returns the service name, or <see langword="null"/> for a URI to pass through untouched (an IP literal or localhost).</summary>
    public static string? GetServiceName(Uri uri)
    {
        if (uri.HostNameType is UriHostNameType.IPv4 or UriHostNameType.IPv6 || uri.IsLoopback && string.Equals(uri.Host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        return uri.IdnHost;
    }

    /// <summary>Chooses the scheme for an attempt: the endpoint's own when the caller allows it, else the caller's first.</summary>
    public static string ChooseScheme(string requestScheme, string? endpointScheme)
    {
        var plus = requestScheme.IndexOf('+', StringComparison.Ordinal);
        if (plus < 0)
        {
            return requestScheme;
        }

        if (endpointScheme is not null && IsAllowed(requestScheme, endpointScheme))
        {
            return endpointScheme;
        }

        return requestScheme[..plus];
    }

    /// <summary>Builds the physical URI for one attempt.</summary>
    public static Uri Rewrite(Uri logical, string scheme, string address)
        => new(string.Concat(scheme, "://", address, logical.PathAndQuery), UriKind.Absolute);

    /// <summary>
    /// Builds the physical URI for one attempt to <paramref name="state"/>'s endpoint, reusing the one built for its
    /// previous attempt when the logical URI's text and the endpoint's record are the same (together they fix the scheme,
    /// the address, the path and the query): a <see cref="Uri"/> is immutable, and a service called on one path again
    /// and again then parses no URI per request. The logical URI is compared by its original text, which needs none of
    /// its parts (reading one, such as the path, parses them all).
    /// </summary>
    public static Uri Rewrite(Uri logical, EndpointState state)
    {
        var endpoint = state.Endpoint;
        var original = logical.OriginalString;
        if (state.LastRewrite is { } last && ReferenceEquals(last.Endpoint, endpoint) && string.Equals(last.Logical, original, StringComparison.Ordinal))
        {
            return last.Uri;
        }

        var uri = Rewrite(logical, ChooseScheme(logical.Scheme, endpoint.Scheme), endpoint.Address);
        state.LastRewrite = new RewrittenUri(original, endpoint, uri);
        return uri;
    }

    /// <summary>Maps a pass-through URI's scheme list (<c>https+http</c>) to its first scheme.</summary>
    public static Uri PassThrough(Uri uri)
    {
        var plus = uri.Scheme.IndexOf('+', StringComparison.Ordinal);
        if (plus < 0)
        {
            return uri;
        }

        var builder = new UriBuilder(uri) { Scheme = uri.Scheme[..plus] };
        if (uri.Port < 0 || uri.IsDefaultPort)
        {
            builder.Port = -1;
        }

        return builder.Uri;
    }

    private static bool IsAllowed(string schemes, string scheme)
    {
        foreach (var range in schemes.AsSpan().Split('+'))
        {
            if (schemes.AsSpan()[range].Equals(scheme, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>A physical URI built for an endpoint's record from a logical URI's original text.</summary>
internal sealed record RewrittenUri(string Logical, DiscoveredEndpoint Endpoint, Uri Uri);
