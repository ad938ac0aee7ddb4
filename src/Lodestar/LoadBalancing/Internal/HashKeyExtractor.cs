using System.Net.Http.Headers;

namespace Lodestar.LoadBalancing.Internal;

/// <summary>
/// Finds a request's hash key (header, cookie, request option, delegate; first found wins) and hashes it with XXH64.
/// </summary>
/// <remarks>
/// The header and cookie paths read <see cref="HttpHeaders.NonValidated"/> and hash the value's characters in place,
/// so they do not allocate. The request-option path touches <see cref="HttpRequestMessage.Options"/>, which allocates
/// its dictionary on first access when the caller never set an option; it is therefore asked after the header and
/// cookie.
/// </remarks>
internal sealed class HashKeyExtractor
{
    private readonly string? _header;
    private readonly string? _cookie;
    private readonly Func<HttpRequestMessage, string?>? _selector;

    public HashKeyExtractor(LoadBalancingOptions options)
    {
        _header = string.IsNullOrWhiteSpace(options.HashKeyHeader) ? null : options.HashKeyHeader;
        _cookie = string.IsNullOrWhiteSpace(options.HashKeyCookie) ? null : options.HashKeyCookie;
        _selector = options.HashKeySelector;
    }

    /// <summary>
    /// Gets the hash of the request's key: the context's precomputed <see cref="PickContext.RequestHash"/> when set,
    /// otherwise the configured key of the request; <see langword="false"/> when there is none.
    /// </summary>
    public bool TryGetHash(in PickContext context, out ulong hash)
    {
        if (context.RequestHash is { } precomputed)
        {
            hash = precomputed;
            return true;
        }

        hash = 0;
        var request = context.Request;
        if (request is null)
        {
            return false;
        }

        if (_header is not null && TryGetFirst(request.Headers, _header, out var value) && value.Length > 0)
        {
            hash = XxHash64.HashChars(value);
            return true;
        }

        if (_cookie is not null && TryGetFirst(request.Headers, "Cookie", out var cookies) && TryFindCookie(cookies, _cookie, out var cookie))
        {
            hash = XxHash64.HashChars(cookie);
            return true;
        }

        if (request.Options.TryGetValue(LoadBalancingRequestOptions.HashKey, out var key) && !string.IsNullOrEmpty(key))
        {
            hash = XxHash64.HashChars(key);
            return true;
        }

        if (_selector?.Invoke(request) is { Length: > 0 } selected)
        {
            hash = XxHash64.HashChars(selected);
            return true;
        }

        return false;
    }

    /// <summary>Finds <c>name=value</c> in a <c>Cookie</c> header value (<c>a=1; b=2</c>).</summary>
    internal static bool TryFindCookie(ReadOnlySpan<char> header, string name, out ReadOnlySpan<char> value)
    {
        while (!header.IsEmpty)
        {
            var end = header.IndexOf(';');
            var pair = (end < 0 ? header : header[..end]).Trim();
            header = end < 0 ? ReadOnlySpan<char>.Empty : header[(end + 1)..];
            var equals = pair.IndexOf('=');
            if (equals > 0 && pair[..equals].TrimEnd().SequenceEqual(name))
            {
                value = pair[(equals + 1)..].Trim();
                if (value.Length >= 2 && value[0] == '"' && value[^1] == '"')
                {
                    value = value[1..^1];
                }

                return !value.IsEmpty;
            }
        }

        value = default;
        return false;
    }

    private static bool TryGetFirst(HttpRequestHeaders headers, string name, out string value)
    {
        if (headers.NonValidated.TryGetValues(name, out var values))
        {
            foreach (var item in values)
            {
                value = item;
                return true;
            }
        }

        value = string.Empty;
        return false;
    }
}
