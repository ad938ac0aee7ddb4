namespace Lodestar.Etcd.Client.Internal;

/// <summary>
/// Reads <see cref="EtcdOptions.Address"/>: one URL, or several separated by commas (spaces around the commas
/// allowed), as etcd's Go client takes <c>Config.Endpoints</c> and etcdctl takes <c>--endpoints</c>.
/// </summary>
internal static class EtcdAddressList
{
    /// <summary>Splits <paramref name="address"/> at its commas and trims each entry; empty entries stay, as empty strings.</summary>
    public static string[] Split(string address) => address.Split(',', StringSplitOptions.TrimEntries);

    /// <summary>Returns whether <paramref name="entry"/> is an absolute http or https URL with no path, query or user info.</summary>
    public static bool IsValid(string entry)
        => Uri.TryCreate(entry, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
           && uri.UserInfo.Length == 0 && uri.AbsolutePath.Length <= 1 && uri.Query.Length == 0 && uri.Fragment.Length == 0;

    /// <summary>Parses a validated <paramref name="address"/> into the base URL (ending in <c>/</c>) of each endpoint, in order.</summary>
    public static Uri[] Parse(string address)
        => [.. Split(address).Select(entry => new Uri(entry.TrimEnd('/') + "/", UriKind.Absolute))];

    /// <summary>Returns <paramref name="entry"/> fit for a message: any user info (which may hold a password) is masked.</summary>
    public static string Shown(string entry)
    {
        var at = entry.LastIndexOf('@');
        if (at < 0)
        {
            return entry;
        }

        var scheme = entry.IndexOf("://", StringComparison.Ordinal);
        var start = scheme < 0 || scheme > at ? 0 : scheme + 3;
        return string.Concat(entry.AsSpan(0, start), "***", entry.AsSpan(at));
    }
}
