using System.Net;
using System.Text;

namespace Lodestar.Xds.Routing.Internal;

/// <summary>Computes a request's hash key from a route's hash policies.</summary>
internal static class HashKeys
{
    /// <summary>
    /// Returns the hash key: the values the policies find, in order, joined with a line feed, stopping after a terminal
    /// policy that found one (Envoy combines the hashes of every policy that yields one; joining the values keeps the
    /// same rule with Lodestar's single key). <see langword="null"/> when no policy finds a value.
    /// </summary>
    /// <remarks>
    /// Header (several values joined with commas), cookie and query parameter policies are read from the request;
    /// <c>connection_properties.source_ip</c> and <c>filter_state</c> have no value on the client side and find none.
    /// </remarks>
    public static string? Compute(IReadOnlyList<XdsHashPolicy> policies, HttpRequestMessage request)
    {
        StringBuilder? combined = null;
        string? single = null;
        foreach (var policy in policies)
        {
            var value = policy.Kind switch
            {
                XdsHashPolicyKind.Header => Header(request, policy.Name!),
                XdsHashPolicyKind.Cookie => Cookie(request, policy.Name!),
                XdsHashPolicyKind.QueryParameter => QueryParameter(request.RequestUri, policy.Name!),
                _ => null,
            };
            if (value is null)
            {
                continue;
            }

            if (single is null)
            {
                single = value;
            }
            else
            {
                combined ??= new StringBuilder(single);
                combined.Append('\n').Append(value);
            }

            if (policy.Terminal)
            {
                break;
            }
        }

        return combined?.ToString() ?? single;
    }

    private static string? Header(HttpRequestMessage request, string name)
        => request.Headers.TryGetValues(name, out var values) ? string.Join(',', values) : null;

    private static string? Cookie(HttpRequestMessage request, string name)
    {
        if (!request.Headers.TryGetValues("Cookie", out var headers))
        {
            return null;
        }

        foreach (var header in headers)
        {
            foreach (var part in header.Split(';'))
            {
                var pair = part.AsSpan().Trim();
                var equals = pair.IndexOf('=');
                if (equals > 0 && pair[..equals].Trim().SequenceEqual(name))
                {
                    return pair[(equals + 1)..].Trim().ToString();
                }
            }
        }

        return null;
    }

    private static string? QueryParameter(Uri? uri, string name)
    {
        if (uri is null || uri.Query.Length <= 1)
        {
            return null;
        }

        foreach (var part in uri.Query.AsSpan(1).ToString().Split('&'))
        {
            var equals = part.IndexOf('=', StringComparison.Ordinal);
            var key = WebUtility.UrlDecode(equals < 0 ? part : part[..equals]);
            if (key == name)
            {
                return equals < 0 ? string.Empty : WebUtility.UrlDecode(part[(equals + 1)..]);
            }
        }

        return null;
    }
}
