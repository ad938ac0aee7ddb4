using System.Globalization;
using System.Text.RegularExpressions;

namespace Lodestar.Xds.Routing;

/// <summary>How a route matches the path.</summary>
internal enum XdsPathMatchKind
{
    /// <summary>The path starts with the value.</summary>
    Prefix,

    /// <summary>The path starts with the value followed by <c>/</c> or nothing (<c>path_separated_prefix</c>).</summary>
    SeparatedPrefix,

    /// <summary>The path equals the value.</summary>
    Path,

    /// <summary>The whole path matches the regular expression.</summary>
    Regex,
}

/// <summary>One route: what it matches and what it does.</summary>
internal sealed class XdsRoute
{
    public required string Name { get; init; }

    public required XdsPathMatchKind PathKind { get; init; }

    public required string PathValue { get; init; }

    public Regex? PathRegex { get; init; }

    public bool CaseSensitive { get; init; } = true;

    public IReadOnlyList<XdsHeaderMatcher> Headers { get; init; } = [];

    /// <summary>Gets the share of matching requests the route takes (runtime_fraction), or <see langword="null"/> for all.</summary>
    public double? RuntimeFraction { get; init; }

    /// <summary>Gets the action, or <see langword="null"/> when it is a redirect, a direct response or another unsupported action.</summary>
    public XdsRouteAction? Action { get; init; }

    /// <summary>
    /// Gets or sets what <c>xds:///</c> channels derive from this route for each call (deadline cap, gRPC retry policy),
    /// computed on first use so that picks allocate nothing for it; the route itself never changes.
    /// </summary>
    internal Channels.Internal.XdsCallRoute? CallRoute { get; set; }

    /// <summary>Returns whether the route matches a request (the path without its query string).</summary>
    public bool Matches(string path, Func<string, string?> headers, Func<double> random)
    {
        var comparison = CaseSensitive ? StringComparison.Ordinal : StringComparison.OrdinalIgnoreCase;
        var pathMatches = PathKind switch
        {
            XdsPathMatchKind.Prefix => path.StartsWith(PathValue, comparison),
            XdsPathMatchKind.SeparatedPrefix => path.StartsWith(PathValue, comparison)
                && (path.Length == PathValue.Length || path[PathValue.Length] == '/'),
            XdsPathMatchKind.Path => string.Equals(path, PathValue, comparison),
            _ => PathRegex!.IsMatch(path),
        };
        if (!pathMatches)
        {
            return false;
        }

        foreach (var header in Headers)
        {
            if (!header.Matches(headers(header.Name)))
            {
                return false;
            }
        }

        return RuntimeFraction is not { } fraction || random() < fraction;
    }
}

/// <summary>The kinds of header matcher.</summary>
internal enum XdsHeaderMatchKind
{
    Exact,
    Prefix,
    Suffix,
    Contains,
    Regex,
    Range,
    Present,
}

/// <summary>One header condition of a route.</summary>
internal sealed class XdsHeaderMatcher
{
    public required string Name { get; init; }

    public required XdsHeaderMatchKind Kind { get; init; }

    public string Value { get; init; } = string.Empty;

    public Regex? Regex { get; init; }

    public long RangeStart { get; init; }

    public long RangeEnd { get; init; }

    /// <summary>Gets, for <see cref="XdsHeaderMatchKind.Present"/>, whether the header must be present (true) or absent (false).</summary>
    public bool Present { get; init; } = true;

    public bool IgnoreCase { get; init; }

    public bool Invert { get; init; }

    public bool TreatMissingAsEmpty { get; init; }

    /// <summary>Returns whether a header value (null when absent) satisfies the condition.</summary>
    public bool Matches(string? value)
    {
        if (value is null && TreatMissingAsEmpty)
        {
            value = string.Empty;
        }

        if (Kind == XdsHeaderMatchKind.Present)
        {
            return (value is not null) == Present ^ Invert;
        }

        if (value is null)
        {
            // A missing header never matches, inverted or not (Envoy's and gRPC's rule).
            return false;
        }

        var comparison = IgnoreCase ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        var result = Kind switch
        {
            XdsHeaderMatchKind.Exact => string.Equals(value, Value, comparison),
            XdsHeaderMatchKind.Prefix => value.StartsWith(Value, comparison),
            XdsHeaderMatchKind.Suffix => value.EndsWith(Value, comparison),
            XdsHeaderMatchKind.Contains => value.Contains(Value, comparison),
            XdsHeaderMatchKind.Regex => Regex!.IsMatch(value),
            _ => long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var number)
                 && number >= RangeStart && number < RangeEnd,
        };
        return result ^ Invert;
    }
}

/// <summary>Where a route sends traffic, and how.</summary>
internal sealed class XdsRouteAction
{
    public required IReadOnlyList<XdsWeightedCluster> Clusters { get; init; }

    /// <summary>Gets the sum of the cluster weights (at least 1).</summary>
    public required long TotalWeight { get; init; }

    /// <summary>Gets <c>timeout</c> (zero disables the timeout), or <see langword="null"/> when unset.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>Gets <c>max_stream_duration.max_stream_duration</c>, or <see langword="null"/> when unset.</summary>
    public TimeSpan? MaxStreamDuration { get; init; }

    /// <summary>Gets <c>max_stream_duration.grpc_timeout_header_max</c>, or <see langword="null"/> when unset.</summary>
    public TimeSpan? GrpcTimeoutHeaderMax { get; init; }

    public XdsRetryPolicy? RetryPolicy { get; init; }

    public IReadOnlyList<XdsHashPolicy> HashPolicies { get; init; } = [];

    /// <summary>Picks a cluster in proportion to the weights.</summary>
    public string PickCluster(Func<double> random)
    {
        if (Clusters.Count == 1)
        {
            return Clusters[0].Name;
        }

        var draw = (long)(Math.Clamp(random(), 0, 1) * TotalWeight);
        long cumulative = 0;
        foreach (var cluster in Clusters)
        {
            cumulative += cluster.Weight;
            if (draw < cumulative)
            {
                return cluster.Name;
            }
        }

        return Clusters[^1].Name;
    }
}

/// <summary>A cluster of a route with its weight.</summary>
internal sealed record XdsWeightedCluster(string Name, uint Weight);

/// <summary>A retry policy: conditions, attempts and backoff.</summary>
/// <param name="RetryOn">The <c>retry_on</c> conditions, as written (<c>5xx</c>, <c>gateway-error</c>, <c>unavailable</c>, ...).</param>
/// <param name="NumRetries">Retries after the first attempt (default 1).</param>
/// <param name="PerTryTimeout">The timeout of each attempt, or <see langword="null"/>.</param>
/// <param name="BaseInterval">The backoff base (default 25 ms).</param>
/// <param name="MaxInterval">The backoff cap (default ten times the base).</param>
/// <param name="RetriableStatusCodes">Extra HTTP status codes that are retried.</param>
internal sealed record XdsRetryPolicy(IReadOnlyList<string> RetryOn, int NumRetries, TimeSpan? PerTryTimeout, TimeSpan BaseInterval, TimeSpan MaxInterval, IReadOnlyList<int> RetriableStatusCodes);

/// <summary>What a hash policy hashes.</summary>
internal enum XdsHashPolicyKind
{
    Header,
    Cookie,
    SourceIp,
    QueryParameter,
    FilterState,
}

/// <summary>One hash policy of a route: where the hash key of ring-hash and Maglev comes from.</summary>
/// <param name="Kind">What is hashed.</param>
/// <param name="Name">The header, cookie, query parameter or filter-state key; <see langword="null"/> for the source IP.</param>
/// <param name="Terminal">Whether a key found here ends the search.</param>
internal sealed record XdsHashPolicy(XdsHashPolicyKind Kind, string? Name, bool Terminal);
