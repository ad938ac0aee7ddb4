using System.Globalization;

namespace Lodestar.Consul.Internal;

/// <summary>Formats durations the way Consul parses them (Go's <c>time.ParseDuration</c>).</summary>
internal static class GoDuration
{
    public static string Format(TimeSpan value)
    {
        var milliseconds = (long)Math.Ceiling(value.TotalMilliseconds);
        return milliseconds % 1000 == 0
            ? (milliseconds / 1000).ToString(CultureInfo.InvariantCulture) + "s"
            : milliseconds.ToString(CultureInfo.InvariantCulture) + "ms";
    }
}
