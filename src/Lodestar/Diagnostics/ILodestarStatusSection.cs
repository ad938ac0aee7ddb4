using System.Text.Json;

namespace Lodestar.Diagnostics;

/// <summary>
/// A read-only section a package adds to the admin view (API and page), such as the xDS client's state. Register it as
/// a singleton <see cref="ILodestarStatusSection"/>; every registered section appears under the admin API's
/// <c>sections</c> property by <see cref="Name"/>, and the admin page renders each generically.
/// </summary>
/// <remarks>
/// <para>
/// A section writes its own JSON, so it needs no reflection and stays trimming- and AOT-safe. The page renders an
/// object as a list of keys and values, an array of objects as a table (one column per key) and any other array as a
/// comma-separated list.
/// </para>
/// <para>
/// <see cref="WriteTo"/> runs on every admin request: it must be quick, must not block on the network and must not
/// change anything. The admin view redacts every string a section writes, but a section should still leave out
/// secrets (tokens, credentials, their configuration) and redact text that came from a server.
/// </para>
/// </remarks>
public interface ILodestarStatusSection
{
    /// <summary>Gets the section's name: the property under <c>sections</c> and the page's heading (e.g. <c>xds</c>).</summary>
    string Name { get; }

    /// <summary>Writes the section's current state as exactly one JSON value, preferably an object.</summary>
    /// <param name="writer">The writer to write the value to.</param>
    void WriteTo(Utf8JsonWriter writer);
}
